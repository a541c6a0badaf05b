# clilib.sh - sourced by the mtasts-ctl TAP tests (test_ctl.sh,
# test_report.sh): the programs, a scratch directory removed on exit, and
# the TAP helpers. POSIX sh.
#
#	. "$(dirname "$0")/clilib.sh"
#	ok LABEL STATUS			one TAP line; counts failures in $fails
#	run WANT LABEL CMD...		CMD's exit status is WANT; output in
#					$TMP/out and $TMP/err
#	has LABEL FILE STRING		FILE holds the fixed STRING
#	hasnt LABEL FILE STRING		FILE does not hold it, in any case
#	jqtrue LABEL FILTER		FILTER is true on $TMP/out (jq)
CTL="${top_builddir:-.}/milter/mtasts-ctl"
MILTER="${top_builddir:-.}/milter/mtasts-milter"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0
fails=0

ok() {		# ok LABEL CONDITION-EXIT-STATUS
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        fails=$((fails + 1))
    fi
}

# run EXPECTED-STATUS LABEL CMD...: checks the exit status, keeps output.
run() {
    want=$1 label=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    [ "$got" -eq "$want" ]
    ok "$label (exit $want, got $got)" $?
}

# has LABEL FILE STRING / hasnt LABEL FILE STRING: a fixed string.
has() {
    grep -qF -- "$3" "$2"
    ok "$1" $?
}
hasnt() {
    ! grep -qiF -- "$3" "$2"
    ok "$1" $?
}

# jqtrue LABEL FILTER: the filter evaluates to true on the last JSON output.
jqtrue() {
    [ "$(jq -r "$2" "$TMP/out" 2>/dev/null)" = "true" ]
    ok "$1" $?
}
