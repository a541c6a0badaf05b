#!/bin/sh
# test_units.sh - the systemd units: the Debian package's
# (debian/mtasts-milter.service) and the sample that make writes with this
# build's paths (etc/mtasts-milter.service). Each passes
# `systemd-analyze verify` in a scratch root that holds the programs it
# names (verify exits 0 on an unknown key or a bad value and only prints
# it: any word it prints fails the check), and names the folders the
# milter's defaults use: the socket's (RuntimeDirectory) and the cache's
# (the package's StateDirectory, the sample's ReadWritePaths). The
# package's unit keeps its hardening. Skipped without systemd-analyze.
set -u
CTL="${top_builddir:-.}/milter/mtasts-ctl"
MILTER="${top_builddir:-.}/milter/mtasts-milter"
SRC="${top_srcdir:-.}"
SAMPLE="${top_builddir:-.}/etc/mtasts-milter.service"
PKG="$SRC/debian/mtasts-milter.service"
SBINDIR="${sbindir:-/usr/local/sbin}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

HARDENING="User=mtasts-milter Group=mtasts-milter NoNewPrivileges=yes
 CapabilityBoundingSet= AmbientCapabilities= ProtectSystem=strict ProtectHome=yes
 PrivateTmp=yes PrivateDevices=yes ProtectKernelTunables=yes ProtectKernelModules=yes
 ProtectControlGroups=yes RestrictNamespaces=yes MemoryDenyWriteExecute=yes
 SystemCallFilter=@system-service ExecReload=/bin/kill%-HUP%\$MAINPID"
n_hard=$(echo $HARDENING | wc -w)
echo "1..$((n_hard + 7))"
i=0 fails=0
ok() { i=$((i + 1)); echo "ok $i - $1"; }
notok() { i=$((i + 1)); echo "not ok $i - $1"; fails=$((fails + 1)); }
# value KEY FILE: the last value of KEY= in a unit file.
value() { sed -n "s/^$1=//p" "$2" | tail -1; }

# The built-in defaults of this build.
"$CTL" -c /dev/null config >"$TMP/defaults" 2>&1 || { cat "$TMP/defaults"; exit 1; }
sock=$(sed -n 's/^socket = unix://p' "$TMP/defaults")
cache=$(sed -n 's/^cache_db = //p' "$TMP/defaults")
sockdir=$(dirname "$sock") cachedir=$(dirname "$cache")

# verify UNIT BINARY_PATH: systemd-analyze verify in a scratch root.
verify() {
    r="$TMP/root.$i"
    mkdir -p "$r/lib/systemd" "$r/etc/systemd/system" "$r$2" "$r/bin" "$r/usr/bin" &&
        cp -a /lib/systemd/system "$r/lib/systemd/" &&
        cp "$MILTER" "$r$2/mtasts-milter" && cp /bin/kill "$r/bin/" &&
        cp /usr/bin/install "$r/usr/bin/" &&
        cp "$1" "$r/etc/systemd/system/mtasts-milter.service" || return 1
    systemd-analyze verify --man=no --root="$r" /etc/systemd/system/mtasts-milter.service \
        >"$TMP/verify.out" 2>&1 && [ ! -s "$TMP/verify.out" ]
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    for _ in $(seq 2); do i=$((i + 1)); echo "ok $i # SKIP no systemd-analyze"; done
else
    if verify "$PKG" /usr/sbin; then
        ok "systemd-analyze verify debian/mtasts-milter.service"
    else
        notok "systemd-analyze verify debian/mtasts-milter.service: $(tr '\n' ' ' <"$TMP/verify.out")"
    fi
    if [ ! -f "$SAMPLE" ]; then
        notok "the sample unit $SAMPLE was made by make"
    elif verify "$SAMPLE" "$SBINDIR"; then
        ok "systemd-analyze verify etc/mtasts-milter.service (as made by make)"
    else
        notok "systemd-analyze verify etc/mtasts-milter.service: $(tr '\n' ' ' <"$TMP/verify.out")"
    fi
fi

# The package: its socket folder, its cache folder (configured
# --localstatedir=/var by dh: /var/lib/mtasts-milter = StateDirectory).
rt=$(value RuntimeDirectory "$PKG")
if [ "$sockdir" = "/run/$rt" ]; then
    ok "debian unit: RuntimeDirectory=$rt holds the default socket $sock"
else
    notok "debian unit: RuntimeDirectory=$rt, default socket $sock"
fi
if [ "$(value StateDirectory "$PKG")" = mtasts-milter ] &&
        grep -q '^#cache_db = /usr/local/var/lib/mtasts-milter/cache.sqlite$' "$SRC/etc/mtasts-milter.conf" &&
        grep -q 'cache_db = /var/lib/' "$SRC/debian/rules"; then
    ok "debian unit: StateDirectory=mtasts-milter is the package's cache folder /var/lib/mtasts-milter"
else
    notok "debian unit: StateDirectory=$(value StateDirectory "$PKG"), not the package's cache folder"
fi
for h in $HARDENING; do
    h=$(echo "$h" | tr '%' ' ')
    if grep -qxF "$h" "$PKG"; then ok "debian unit: $h"; else notok "debian unit: $h"; fi
done

# The sample: this build's programs, socket and cache folders.
if [ "$(value ExecStart "$SAMPLE")" = "$SBINDIR/mtasts-milter -f" ]; then
    ok "sample unit: ExecStart=$SBINDIR/mtasts-milter -f (this build's sbindir)"
else
    notok "sample unit: ExecStart=$(value ExecStart "$SAMPLE"), this build installs $SBINDIR/mtasts-milter"
fi
rw=" $(value ReadWritePaths "$SAMPLE") "
case "$rw" in
*" $cachedir "*) ok "sample unit: ReadWritePaths has the default cache folder $cachedir" ;;
*) notok "sample unit: ReadWritePaths ($rw) lacks the default cache folder $cachedir" ;;
esac
case "$rw" in
*" $sockdir "*) [ "/run/$(value RuntimeDirectory "$SAMPLE")" = "$sockdir" ] &&
    ok "sample unit: RuntimeDirectory and ReadWritePaths hold the default socket $sock" ||
    notok "sample unit: RuntimeDirectory is not $sockdir" ;;
*) notok "sample unit: ReadWritePaths ($rw) lacks the socket folder $sockdir" ;;
esac
exit $((fails > 0))
