# shellcheck shell=bash
# faultlib.sh - sourced by the fault tests (tests/faults/) after maplib.sh:
# starting the milter and waiting until it listens.
#
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
