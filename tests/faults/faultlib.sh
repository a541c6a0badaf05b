# shellcheck shell=bash
# faultlib.sh - sourced by the fault tests (tests/faults/) after maplib.sh:
# miltload as the MTA, starting the milter and waiting until it listens.
#
#   SETTINGS | fault_conf OUT          OUT: the world's configuration with
#                                      the settings read from stdin in place
#                                      of its own for those options
#   fault_need_miltload                LOAD: miltload; the test is skipped
#                                      (exit 0) when it is not built
#   load OUT ARGS...                   miltload ARGS against unix:$W/m.sock,
#                                      its output in OUT; waits at most
#                                      LOAD_TIMEOUT_MS (30000) an answer
#   field OUT NAME                     the number after NAME= in OUT
#   replies OUT                        its "rcpt_replies: ..." line
#   fault_milter_start CONF SOCK LOG   mtasts-milter -f in the background on
#                                      unix:SOCK, output appended to LOG;
#                                      sets MPID; succeeds once it says it
#                                      listens (10 s at most), fails if it
#                                      ends first

fault_milter_start() {
    local conf=$1 sock=$2 log=$3 i before
    before=$(grep -c ' listening on ' "$log" 2>/dev/null)
    "$MILTER" -f -c "$conf" -p "unix:$sock" >>"$log" 2>&1 </dev/null &
    MPID=$!
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -c ' listening on ' "$log")" -gt "${before:-0}" ] && [ -S "$sock" ] && return 0
        kill -0 "$MPID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

fault_conf() {
    local out=$1 settings keys
    settings=$(cat)
    keys=$(printf '%s\n' "$settings" | sed -n 's/^\([a-z_0-9]*\)[[:space:]]*=.*/\1/p' | paste -sd'|')
    {
        grep -v -E "^(#|(${keys:-#})[[:space:]]*=)" "$MTS_WORLD_CONF"
        printf '%s\n' "$settings"
    } >"$out"
}

fault_need_miltload() {
    LOAD="$BUILD/tests/bench/miltload"
    if [ ! -x "$LOAD" ]; then
        echo "1..0 # SKIP $LOAD is not built (make check builds it)"
        exit 0
    fi
}

load() {
    local out=$1
    shift
    "$LOAD" -s "unix:$W/m.sock" -t "${LOAD_TIMEOUT_MS:-30000}" "$@" >"$out" 2>&1
}
field() { grep -o "\b$2=[0-9.]*" "$1" | head -n 1 | cut -d= -f2; }
replies() { grep -o 'rcpt_replies: .*' "$1" | head -n 1; }
