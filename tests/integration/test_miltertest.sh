#!/bin/bash
# test_miltertest.sh - protocol-level tests of mtasts-milter: miltertest (the
# MTA side of the milter protocol, scripted in Lua) against the real milter,
# which looks domains up in the test world (tests/world). TAP output.
#
# Scenarios live in tests/integration/miltertest/, one per file, named for
# what they test: NAME.lua runs under miltertest, NAME_raw.py (the few things
# miltertest cannot send: long arguments, port 0, reading reply text) under
# python3. Each prints its own checks as "ok - ..." / "not ok - ..."; this
# script numbers them. A header comment in each scenario says more:
#
#   config: VARIANT        the milter instance to run against (default main;
#                          the variants are in write_conf)
#   log: ERE               the milter's log, from this scenario, has a match
#   no-log: ERE            ... has none
#   world-log: FILE ERE    the world's FILE (e.g. unbound.log) has a match
#   no-world-log: FILE ERE ... has none
#
# A scenario finds its milter in the environment: MT_SOCKET (unix socket
# path), MT_CONF (its configuration file), MT_LOG (its log), MT_PID, and
# MT_LIB (lib/common.lua). Lua scenarios run through lib/run.lua, which
# reports a Lua error (miltertest itself does not print it).
#
# Each of these is one more check, and so are: "the scenario ran to its end"
# (exit status 0, at least one check) and "the milter still runs" after it.
# One milter instance per configuration variant (see write_conf), each on
# its own unix socket; all stopped by PID with SIGTERM at the end, which
# must exit 0.
#
# Needs root (network namespace, the world's ports 53 and 443) and
# miltertest (Debian package miltertest); otherwise the whole script is
# skipped. Runs in a network namespace of its own (mts-mt-PID).
#
# Environment: MILTERTEST (the miltertest binary), MTS_MT_DIR (scratch
# directory, default /tmp/mts-mt.PID), MTS_MT_KEEP=1 (leave the scratch
# directory: logs, configs, each scenario's output), MTS_MT_ONLY (a
# pattern: run only scenarios whose file name matches it).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/$(basename "$0")"
BUILD=$(cd "${top_builddir:-$HERE/../..}" && pwd)
MILTER="$BUILD/milter/mtasts-milter"
WORLD_SH="$HERE/../world/world.sh"
SCENARIOS="$HERE/miltertest"
MILTERTEST=${MILTERTEST:-$(command -v miltertest || true)}
W=${MTS_MT_DIR:-/tmp/mts-mt.$$}

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root (network namespace; the test world's DNS on 53, HTTPS on 443)"
    exit 0
fi
if [ -z "$MILTERTEST" ] || [ ! -x "$MILTERTEST" ]; then
    echo "1..0 # SKIP miltertest is not installed (Debian package miltertest)"
    exit 0
fi
if [ ! -x "$MILTER" ]; then
    echo "1..0 # SKIP $MILTER is not built"
    exit 0
fi
if ! command -v ip >/dev/null 2>&1; then
    echo "1..0 # SKIP ip (iproute2) is not installed"
    exit 0
fi

# Run in a network namespace of our own: other suites' worlds use the same
# fixed loopback addresses, and nothing may leave the namespace.
if [ -z "${MTS_MT_IN_NETNS:-}" ]; then
    why=$("$WORLD_SH" netns-check) || { echo "Bail out! $why"; exit 1; }
    ns=mts-mt-$$
    ip netns add "$ns" || { echo "Bail out! cannot create network namespace $ns"; exit 1; }
    trap 'ip netns del "$ns" 2>/dev/null' EXIT
    ip netns exec "$ns" ip link set lo up
    MTS_MT_IN_NETNS=$ns ip netns exec "$ns" "$SELF" "$@"
    exit $?
fi

# ---------------------------------------------------------------- TAP
n=0 fails=0
ok() {
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        fails=$((fails + 1))
    fi
}
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
diag() { sed 's/^/#   /'; }
bail() { echo "Bail out! $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
declare -A PID=()
VARIANTS=()

# stop_milters: SIGTERM to every instance at once (libmilter notices a
# stop only at its next 5-second poll), then wait for each by PID (SIGKILL
# after 10 s). Sets STOPPED[VARIANT] to the exit status, or "killed". (Not
# in a subshell: wait needs the milters to be our children.)
declare -A STOPPED=()
stop_milters() {
    local v p i
    for v in "${VARIANTS[@]}"; do
        [ -n "${PID[$v]}" ] && kill -TERM "${PID[$v]}" 2>/dev/null
    done
    for v in "${VARIANTS[@]}"; do
        p=${PID[$v]}
        [ -n "$p" ] || continue
        PID[$v]=
        for ((i = 0; i < 100; i++)); do
            alive "$p" || break
            sleep 0.1
        done
        if alive "$p"; then
            kill -KILL "$p" 2>/dev/null
            wait "$p" 2>/dev/null
            STOPPED[$v]=killed
        else
            wait "$p" 2>/dev/null
            STOPPED[$v]=$?
        fi
    done
}

cleanup() {
    stop_milters
    "$WORLD_SH" down "$W/world" >/dev/null 2>&1
    if [ -n "${MTS_MT_KEEP:-}" ]; then
        echo "# MTS_MT_KEEP: scratch directory $W kept"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the world
mkdir -p "$W" || bail "cannot create $W"
if ! "$WORLD_SH" up "$W/world" >"$W/world-up.log" 2>&1; then
    diag <"$W/world-up.log"
    bail "the test world did not come up"
fi
# shellcheck disable=SC1091
. "$W/world/env"

# ---------------------------------------------------------------- milters
# write_conf VARIANT: the world's settings (own cache per instance, so that
# each scenario's lookups show in its own instance's log), short deadlines,
# and what the variant needs. An option may be given only once.
write_conf() {
    local v=$1
    {
        grep -v -e '^#' -e '^cache_db' "$MTS_WORLD_CONF"
        echo "cache_db = $W/$v.sqlite"
        echo "enforcing_transports = smtp"
        if [ "$v" = custom ]; then
            echo "act_on = daemon:ORIGINATING"
        else
            echo "act_on = authenticated, non-smtpd"
        fi
        if [ "$v" = deadline ]; then
            echo "rcpt_deadline_ms = 500ms"
        else
            echo "rcpt_deadline_ms = 3s"
        fi
        echo "fetch_connect_timeout_ms = 1s"
        echo "fetch_timeout_ms = 2s"
        echo "dns_timeout_ms = 2s"
        case $v in
            main | deadline | reload) ;; # reload: its scenario edits the file
            dryrun) echo "dry_run = yes" ;;
            custom)
                echo "header_name = X-Transport-Security"
                echo "defer_reply = 451 4.7.1"
                echo "reject_reply = 554 5.7.1"
                ;;
            local) echo "local_domains = local.test" ;;
            routes)
                echo "default_route = relay:[smarthost.example]:587"
                echo "enforcing_relays = secure-relay.example"
                ;;
            rules)
                echo "rule = auth=bob rcpt=mxmismatch.test require=none"
                echo "rule = rcpt=servfail.test require=mta-sts unknown=tag"
                echo "rule = rcpt=*.test auth=carol require=mta-sts fail=reject"
                ;;
            *) return 1 ;;
        esac
    } >"$W/$v.conf"
}

# start_milter VARIANT: starts it unless running; waits (10 s at most) for
# its socket and its "listening" line. Fails with the reason on stdout.
start_milter() {
    local v=$1 sock="$W/$1.sock" log="$W/$1.log" i p
    [ -n "${PID[$v]+set}" ] && { [ -n "${PID[$v]}" ]; return; }
    VARIANTS+=("$v")
    PID[$v]=
    write_conf "$v" || { echo "no configuration variant \"$v\""; return 1; }
    "$MILTER" -f -v -c "$W/$v.conf" -p "unix:$sock" >"$log" 2>&1 </dev/null &
    p=$!
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$p" 2>/dev/null; then
            wait "$p"
            echo "mtasts-milter ($v) exited with status $? at start:"
            cat "$log"
            return 1
        fi
        [ -S "$sock" ] && grep -q ' listening on ' "$log" && break
        sleep 0.1
    done
    if ! [ -S "$sock" ] || ! grep -q ' listening on ' "$log"; then
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        echo "mtasts-milter ($v) did not come up within 10 s:"
        cat "$log"
        return 1
    fi
    PID[$v]=$p
}

# lgrep: grep in logs byte by byte (a log may quote bytes that are not UTF-8)
lgrep() { LC_ALL=C grep -a "$@"; }

# alive PID: runs and is not a zombie
alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ]
}

# ---------------------------------------------------------------- scenarios
# directives FILE: the "key: value" lines of the header comment
directives() {
    sed -n -E '1,40{s/^(-- |# )?(config|log|no-log|world-log|no-world-log): (.*)$/\2\t\3/p}' "$1"
}

run_scenario() {
    local f=$1 name variant out err rc log off slice checks line key val file re ts
    name=$(basename "$f")
    name=${name%.*}
    variant=$(directives "$f" | awk -F'\t' '$1 == "config" {print $2; exit}' | awk '{print $1}')
    variant=${variant:-main}
    out="$W/$name.out" err="$W/$name.err"

    if [[ $f == *.py ]] && ! command -v python3 >/dev/null 2>&1; then
        skip "$name" "python3 is not installed"
        return
    fi
    if ! start_milter "$variant" >"$err" 2>&1; then
        ok "$name: mtasts-milter ($variant) is running" 1
        diag <"$err"
        return
    fi
    log="$W/$variant.log"
    off=$(stat -c %s "$log")
    export MT_SOCKET="$W/$variant.sock" MT_CONF="$W/$variant.conf" MT_LOG="$log" \
        MT_PID="${PID[$variant]}" MT_LIB="$SCENARIOS/lib/common.lua" MT_SCENARIO="$f"
    ts=$(date +%s%N)
    case $f in
        *.lua) timeout 60 "$MILTERTEST" -s "$SCENARIOS/lib/run.lua" >"$out" 2>"$err" ;;
        *.py) PYTHONDONTWRITEBYTECODE=1 timeout 60 python3 "$f" >"$out" 2>"$err" ;;
    esac
    rc=$?
    echo "# $name: $(( ($(date +%s%N) - ts) / 1000000 )) ms"
    slice="$W/$name.log"
    tail -c +$((off + 1)) "$log" >"$slice"

    checks=0
    while IFS= read -r line; do
        case $line in
            # ("#" would start a TAP directive: escaped)
            "ok - "*) checks=$((checks + 1)); line=${line#ok - }; ok "$name: ${line//#/\\#}" 0 ;;
            "not ok - "*) checks=$((checks + 1)); line=${line#not ok - }; ok "$name: ${line//#/\\#}" 1 ;;
            "#"*) echo "$line" ;;
            *) echo "# $name: $line" ;;
        esac
    done <"$out"
    [ "$rc" -eq 0 ] && [ "$checks" -gt 0 ]
    ok "$name: ran to its end ($checks checks, exit status $rc)" $?
    if [ "$rc" -ne 0 ] || [ "$checks" -eq 0 ]; then
        diag <"$err"
        echo "#   milter log of the scenario (last lines):"
        tail -n 15 "$slice" | diag
    fi

    while IFS=$'\t' read -r key val; do
        case $key in
            log)
                lgrep -Eq -- "$val" "$slice"
                ok "$name: the milter logged /$val/" $? ;;
            no-log)
                ! lgrep -Eq -- "$val" "$slice"
                rc=$?
                ok "$name: the milter did not log /$val/" $rc
                [ $rc -eq 0 ] || lgrep -E -- "$val" "$slice" | head -n 5 | diag ;;
            world-log|no-world-log)
                file=${val%% *} re=${val#* }
                if [ "$key" = world-log ]; then
                    lgrep -Eq -- "$re" "$MTS_WORLD_DIR/$file"
                    ok "$name: the world's $file has /$re/" $?
                else
                    ! lgrep -Eq -- "$re" "$MTS_WORLD_DIR/$file"
                    ok "$name: the world's $file has no /$re/" $?
                fi ;;
        esac
    done < <(directives "$f")

    alive "${PID[$variant]}"
    ok "$name: mtasts-milter ($variant) still runs afterwards" $?
}

t0=$(date +%s)
for f in "$SCENARIOS"/*.lua "$SCENARIOS"/*_raw.py; do
    [ -f "$f" ] || continue
    [ -n "${MTS_MT_ONLY:-}" ] && [[ $(basename "$f") != *${MTS_MT_ONLY}* ]] && continue
    run_scenario "$f"
done

# ---------------------------------------------------------------- the end
for v in "${VARIANTS[@]}"; do
    [ -n "${PID[$v]}" ] || continue
    # (reload_keeps_connection_config causes one "reload refused" on purpose)
    lgrep -E '^mtasts-milter: error:' "$W/$v.log" | lgrep -v ': error: reload refused' >"$W/$v.errors"
    [ ! -s "$W/$v.errors" ]
    ok "mtasts-milter ($v) logged no error" $?
    head -n 5 "$W/$v.errors" | diag
done
started=()
for v in "${VARIANTS[@]}"; do
    [ -n "${PID[$v]}" ] && started+=("$v")
done
stop_milters
for v in "${started[@]}"; do
    [ "${STOPPED[$v]}" = 0 ]
    ok "mtasts-milter ($v) stops on SIGTERM with exit status 0 (got ${STOPPED[$v]})" $?
done
echo "# $(($(date +%s) - t0)) s for the scenarios"
echo "1..$n"
[ "$fails" -eq 0 ] || echo "# $fails of $n failed"
[ "$fails" -eq 0 ]
