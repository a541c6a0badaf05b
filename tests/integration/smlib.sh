# shellcheck shell=bash
# smlib.sh - Debian 12's Sendmail 8.17 for the tests, never installed
# (sendmail-bin conflicts with postfix). Source it.
#
#   sm_fetch            the .debs (sendmail-bin, sendmail-cf, libwrap0) are
#                       fetched once with apt-get download and unpacked with
#                       dpkg-deb -x into MTS_SENDMAIL_ROOT (default
#                       /var/cache/mtasts-test/sendmail); prints a TAP SKIP
#                       line and exits 0 when that cannot be done. Sets
#                       SENDMAIL and CF_DIR, exports LD_LIBRARY_PATH.
#   sm_cf DIR RUN [MC-LINE...]
#                       DIR/test.cf from etc/sendmail.mc (its /run/mtasts-milter/
#                       paths moved to RUN/) with a queue in DIR/queue, a pid
#                       file DIR/sendmail.pid and the extra .mc lines
#   sm DIR ARGS...      that sendmail with DIR/test.cf, in a UTS namespace
#                       whose host name is sm.e2e.test (with an unqualified
#                       name Sendmail sleeps before it reads its .cf), after
#                       the words of SM_IN (e.g. "ip netns exec NS"); with
#                       SM_RESOLV (a resolv.conf, e.g. the world's), in a
#                       mount namespace where that file is /etc/resolv.conf:
#                       Sendmail then resolves recipients through DNS as in
#                       production (and passes {rcpt_host} fully qualified)
# Needs SRC (the source tree).

SM_ROOT=${MTS_SENDMAIL_ROOT:-/var/cache/mtasts-test/sendmail}

sm_fetch() {
    local t d tmp
    for t in m4 unshare dpkg-deb; do
        command -v "$t" >/dev/null || { echo "1..0 # SKIP $t is not installed"; exit 0; }
    done
    SENDMAIL="$SM_ROOT/root/usr/libexec/sendmail/sendmail"
    CF_DIR="$SM_ROOT/root/usr/share/sendmail/cf"
    if [ ! -x "$SENDMAIL" ]; then
        # Fetched and unpacked in a folder of this run's own, then renamed
        # into place: suites running side by side (test_sendmail and
        # test_sendmail_deliver, or two trees' suites in CI) may both get
        # here; the first rename wins, the others' copies are dropped.
        mkdir -p "$SM_ROOT" || { echo "Bail out! cannot create $SM_ROOT"; exit 1; }
        tmp=$(mktemp -d "$SM_ROOT/fetch.XXXXXX") || { echo "Bail out! mktemp in $SM_ROOT failed"; exit 1; }
        mkdir -p "$tmp/debs"
        if ! (cd "$tmp/debs" && apt-get download sendmail-bin sendmail-cf libwrap0) \
            >"$tmp/download.log" 2>&1; then
            echo "1..0 # SKIP cannot fetch Sendmail (apt-get download sendmail-bin sendmail-cf libwrap0): $(tail -n1 "$tmp/download.log")"
            rm -rf "$tmp"
            exit 0
        fi
        for d in "$tmp"/debs/*.deb; do
            dpkg-deb -x "$d" "$tmp/root" || { rm -rf "$tmp"; echo "Bail out! dpkg-deb -x $d failed"; exit 1; }
        done
        # setgid: the loader would ignore LD_LIBRARY_PATH (libwrap.so.0 is unpacked too)
        chmod 0755 "$tmp/root/usr/libexec/sendmail/sendmail"
        if ! mv -T "$tmp/root" "$SM_ROOT/root" 2>/dev/null && [ ! -x "$SENDMAIL" ]; then
            # a partial unpack (an older smlib.sh unpacked in place): replaced
            rm -rf "$SM_ROOT/root" && mv -T "$tmp/root" "$SM_ROOT/root"
        fi
        rm -rf "$tmp"
    fi
    [ -x "$SENDMAIL" ] || { echo "1..0 # SKIP no unpacked Sendmail in $SM_ROOT"; exit 0; }
    export LD_LIBRARY_PATH="$SM_ROOT/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

sm_cf() {
    local dir="$1" run="$2" line
    shift 2
    mkdir -p "$dir/queue"
    chmod 0700 "$dir/queue"
    {
        echo "divert(0)dnl"
        echo "OSTYPE(\`linux')dnl"
        echo "define(\`confDOMAIN_NAME', \`sm.e2e.test')dnl"
        echo "define(\`QUEUE_DIR', \`$dir/queue')dnl"
        # test directories are under /tmp (world-writable, sticky)
        echo "define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl"
        echo "define(\`confDONT_PROBE_INTERFACES', \`True')dnl"
        echo "define(\`confPID_FILE', \`$dir/sendmail.pid')dnl"
        for line in "$@"; do echo "$line"; done
        sed "s#/run/mtasts-milter/#$run/#g" "$SRC/etc/sendmail.mc"
        echo "MAILER(\`smtp')dnl"
    } >"$dir/test.mc"
    m4 -D_CF_DIR_="$CF_DIR/" "$CF_DIR/m4/cf.m4" "$dir/test.mc" >"$dir/test.cf" 2>"$dir/m4.err"
}

sm() {
    local dir="$1"
    shift
    # shellcheck disable=SC2086 # SM_IN: words
    if [ -n "${SM_RESOLV:-}" ]; then
        # shellcheck disable=SC2086 # SM_IN: words
        ${SM_IN:-} timeout 60 unshare --uts --mount sh -c \
            'mount --bind "$0" /etc/resolv.conf && hostname sm.e2e.test && exec "$@"' \
            "$SM_RESOLV" "$SENDMAIL" -C "$dir/test.cf" "$@"
        return
    fi
    ${SM_IN:-} timeout 60 unshare --uts sh -c 'hostname sm.e2e.test && exec "$@"' sh \
        "$SENDMAIL" -C "$dir/test.cf" "$@"
}
