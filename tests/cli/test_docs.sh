#!/bin/sh
# test_docs.sh - every option the code knows is documented: commented in
# etc/mtasts-milter.conf and described in mtasts-milter.conf(5). Also: the
# sample file, uncommented, loads with exactly the built-in defaults.
set -u
CTL="${top_builddir:-.}/milter/mtasts-ctl"
SRC="${top_srcdir:-.}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$CTL" -c /dev/null config | sed -n 's/^\([a-z_0-9]*\) = .*/\1/p' >"$TMP/options"
n_opts=$(wc -l <"$TMP/options")
echo "1..$((n_opts * 2 + 2))"
i=0
fails=0
while read -r opt; do
    i=$((i + 1))
    if grep -q "^#$opt = \|^#$opt =\$" "$SRC/etc/mtasts-milter.conf"; then
        echo "ok $i - $opt is in etc/mtasts-milter.conf"
    else
        echo "not ok $i - $opt is in etc/mtasts-milter.conf"; fails=$((fails + 1))
    fi
    i=$((i + 1))
    if grep -q "^\.BI $opt " "$SRC/man/mtasts-milter.conf.5"; then
        echo "ok $i - $opt is in mtasts-milter.conf(5)"
    else
        echo "not ok $i - $opt is in mtasts-milter.conf(5)"; fails=$((fails + 1))
    fi
done <"$TMP/options"

# Uncomment every option of the sample: it must load, and to the defaults.
sed -n 's/^#\([a-z_0-9]* =.*\)$/\1/p' "$SRC/etc/mtasts-milter.conf" >"$TMP/all.conf"
i=$((i + 1))
if "$CTL" -c "$TMP/all.conf" config >"$TMP/sample" 2>"$TMP/err"; then
    echo "ok $i - the sample configuration, uncommented, loads"
else
    echo "not ok $i - the sample configuration, uncommented, loads: $(cat "$TMP/err")"
    fails=$((fails + 1))
fi
i=$((i + 1))
"$CTL" -c /dev/null config | grep -v '^#' | grep -v '^cache_db' >"$TMP/d1"
grep -v '^#' "$TMP/sample" | grep -v '^cache_db' >"$TMP/d2"
if [ "$n_opts" -gt 10 ] && cmp -s "$TMP/d1" "$TMP/d2"; then
    echo "ok $i - the sample's values are the built-in defaults"
else
    echo "not ok $i - the sample's values are the built-in defaults"
    diff "$TMP/d1" "$TMP/d2" | sed 's/^/# /'
    fails=$((fails + 1))
fi
[ "$fails" -eq 0 ]
