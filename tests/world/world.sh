#!/bin/bash
# world.sh — a small private internet on loopback for mtasts-milter tests.
#
#   world.sh up DIR          build everything under DIR, start the servers,
#                            wait until each answers, write DIR/env
#   world.sh down DIR        stop every server by the PID in its pid file
#   world.sh env DIR         print DIR/env (eval "$(world.sh env DIR)")
#   world.sh status DIR      show which servers run
#   world.sh set-policy DIR DOMAIN ID POLICYFILE
#                            change DOMAIN's _mta-sts TXT id to ID (ID "-"
#                            removes the TXT record) and the policy body that
#                            https://mta-sts.DOMAIN serves (POLICYFILE "-"
#                            keeps the body); re-signs test., reloads nsd,
#                            flushes DOMAIN from unbound's cache
#   world.sh flush DIR [NAME]
#                            flush unbound's cache (everything, or NAME and
#                            everything below it)
#   world.sh packages        Debian packages the world needs
#   world.sh netns-check     whether a network namespace works here (ip netns
#                            add, then ip netns exec in it); if not, prints
#                            one line saying why (what ip said, a hint) and
#                            exits 1. The suites bail out with that line.
#
# With MTS_WORLD_CACHE=DIR in the environment (make check sets it), up keeps
# the keys and certificates it made (about 190 openssl and ldns-keygen runs,
# most of its time) under DIR, one set per world.sh and day, and the next up
# copies them instead: every world of one test suite has the same CA, keys
# and certificates; zones are still signed afresh at each up.
#
# See tests/world/README for the domains, addresses and ports.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ---- addresses and ports (all on loopback) --------------------------------
AUTH_ADDR=127.0.10.1      # nsd, authoritative for test. and its child zones
RES_ADDR=127.0.10.2       # unbound, validating resolver (trust anchor test.)
DEAD_DNS_ADDR=127.0.10.9  # timeout.test is delegated here; nothing listens
DNS_PORT=53
UNBOUND_CTL_PORT=8953     # unbound-control on RES_ADDR, plain (no certs)
HTTPS_ADDR=127.0.20.1     # nginx, every policy host, SNI selects the cert
HANG_ADDR=127.0.20.2      # hangserver.py: accepts TCP, never answers
HANGTLS_ADDR=127.0.20.3   # hangserver.py: TLS handshake, never answers HTTP
REFUSED_ADDR=127.0.20.9   # nothing listens (connection refused)
HTTPS_PORT=443
MX_ADDR=127.0.30.1        # every MX host name resolves here (no SMTP yet)
# STARTTLS SMTP servers (tests/unit/smtp_server.py, world form) on port 25;
# the domains that use them are made in build_mx_domains
SMTP_PORT=25
PROVIDER_MX_ADDR=127.0.50.1  # mx.provider.test: good; shared by several domains
GOODMX_ADDR1=127.0.50.2      # mx.goodmx.test (two addresses, both good)
GOODMX_ADDR2=127.0.50.3
EXPIREDMX_ADDR=127.0.50.4    # certificate from the CA, expired
WRONGNAMEMX_ADDR=127.0.50.5  # certificate for mx.someone-else.test
NOSTARTTLS_ADDR=127.0.50.6   # no STARTTLS in the EHLO reply
TLS10MX_ADDR=127.0.50.7      # TLS 1.0 only
SELFSIGNEDMX_ADDR=127.0.50.8 # self-signed certificate
SILENTMX_ADDR=127.0.50.9     # accepts, never says a word
DOWNMX_ADDR=127.0.50.99      # nothing listens (connection refused)
SYNDROP_NET=10.60.0          # /24 of synflood.test's 32 MX hosts; a test that
                             # uses them makes it drop SYNs (test_probe_starve)
TLS11MX_ADDR=127.0.50.10     # TLS 1.1 only (SECLEVEL=0 in the server's context)
UNTRUSTEDMX_ADDR=127.0.50.11 # certificate from another CA, not in ca.crt
HUGEBANNER_ADDR=127.0.50.12  # 5000 greeting lines of 900 octets, then 220
BINARYBANNER_ADDR=127.0.50.13 # a greeting of binary bytes (NUL, 0xff, ESC)
ENDLESS_ADDR=127.0.50.14     # "220-" continuation lines that never end
LONGLINE_ADDR=127.0.50.15    # a greeting line that never ends (no CRLF)
HANGTLSMX_ADDR=127.0.50.16   # "220" to STARTTLS, then never a ServerHello
DRIPMX_ADDR=127.0.50.17      # a "220-" line every 0.2 s: only a deadline ends it
# DANE (RFC 7672): TLSA records computed from these servers' certificates
DANEEE_ADDR=127.0.50.30      # self-signed, DANE-EE 3 1 1 (its name is not the MX's)
DANETA_ADDR=127.0.50.31      # leaf of a private CA, sent with it; DANE-TA 2 1 1
DANEPKIX_ADDR=127.0.50.32    # WebPKI-valid for the mx.dane*/mx.stsdane* names
# "slow" MX hosts (greeting after 1.5 s): two /24 networks, four hosts each;
# the server logs how many connections to them are open at once
SLOW_NET1=127.0.50
SLOW_NET2=127.0.51

PACKAGES="nsd unbound ldnsutils nginx-light openssl curl iproute2 python3"
SMTP_SERVER="$HERE/../unit/smtp_server.py"

ZONE_TTL=300
NEG_TTL=60

die() { echo "world.sh: $*" >&2; exit 1; }
note() { echo "world.sh: $*" >&2; }

PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3 || true)"

need_tools() {
    local missing=() t
    for t in nsd nsd-control unbound unbound-control unbound-checkconf nginx \
             openssl ldns-keygen ldns-signzone ldns-key2ds drill curl ss; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [ -n "$PY" ] || missing+=(python3)
    [ -r "$SMTP_SERVER" ] || die "missing $SMTP_SERVER (the SMTP test server)"
    if [ "${#missing[@]}" -gt 0 ]; then
        die "missing tools: ${missing[*]} (apt-get install $PACKAGES)"
    fi
}

# ---- process handling ------------------------------------------------------

# pid_alive PIDFILE COMM -> prints pid and succeeds if the process runs and
# its command name is COMM (guards against a reused pid)
pid_alive() {
    local pidfile="$1" comm="$2" pid c
    [ -s "$pidfile" ] || return 1
    pid="$(tr -dc '0-9' <"$pidfile")"
    [ -n "$pid" ] || return 1
    running "$pid" || return 1
    c="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    case "$c" in
        "$comm"*) echo "$pid"; return 0 ;;
    esac
    return 1
}

# running PID: the process exists and is not a zombie (our daemons are
# reaped by whatever PID 1 is, which may take a while)
running() {
    local st
    st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    st="${st##*) }"
    case "${st%% *}" in
        Z|X|x|"") return 1 ;;
    esac
    return 0
}

# stop_one NAME PIDFILE COMM: SIGTERM the process and its children, wait
# (5 s, then SIGKILL) until all are gone
stop_one() {
    local name="$1" pidfile="$2" comm="$3" pid kids k i alive
    if ! pid="$(pid_alive "$pidfile" "$comm")"; then
        rm -f "$pidfile"
        return 0
    fi
    kids="$(pgrep -P "$pid" 2>/dev/null || true)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive=0
        running "$pid" && alive=1
        for k in $kids; do running "$k" && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.05
    done
    if [ "$alive" = 1 ]; then
        note "$name (pid $pid) did not stop on SIGTERM, sending SIGKILL"
        # shellcheck disable=SC2086 # $kids is a list of pids
        kill -KILL "$pid" $kids 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do
            alive=0
            running "$pid" && alive=1
            for k in $kids; do running "$k" && alive=1; done
            [ "$alive" = 0 ] && break
            sleep 0.05
        done
        [ "$alive" = 0 ] || note "$name (pid $pid) still alive"
    fi
    rm -f "$pidfile"
}

SERVERS="nginx hangserver smtpserver unbound nsd"
server_pidfile() { echo "$DIR/$1.pid"; }
server_comm() {
    case "$1" in
        hangserver|smtpserver) echo python3 ;;
        *) echo "$1" ;;
    esac
}

cmd_down() {
    local s
    for s in $SERVERS; do
        stop_one "$s" "$(server_pidfile "$s")" "$(server_comm "$s")"
    done
    rm -f "$DIR/nsd.ctl"
}

cmd_status() {
    local s pid rc=0
    for s in $SERVERS; do
        if pid="$(pid_alive "$(server_pidfile "$s")" "$(server_comm "$s")")"; then
            echo "$s running (pid $pid)"
        else
            echo "$s not running"
            rc=1
        fi
    done
    return "$rc"
}

# is something already listening on ADDR:PORT (tcp or udp)?
port_busy() {
    local addr="$1" port="$2"
    ss -Hlntu 2>/dev/null | awk '{print $5}' |
        grep -Eq "^(\\*|0\\.0\\.0\\.0|\\[::\\]|${addr//./\\.}):$port\$"
}

# ---- DNS -------------------------------------------------------------------

RR() { echo "$*" >>"$DIR/zones/test.base"; }
# mint ARGS...: openssl ARGS, which makes a key and certificate, unless this
# up copied them from MTS_WORLD_CACHE (cache_get)
CACHED=
mint() { [ -n "$CACHED" ] || openssl "$@"; }
# put FILE, append FILE: write (add) the here-document on stdin to FILE
# without a process: up writes hundreds of them, and a cat for each (a fork
# and an exec) was most of up's time under a loaded test suite
put() { local s; IFS= read -r -d '' s || :; printf '%s' "$s" >"$1"; }
append() { local s; IFS= read -r -d '' s || :; printf '%s' "$s" >>"$1"; }

# TXT records of DOMAIN's _mta-sts name live in DIR/txt/DOMAIN (one rdata per
# line) so set-policy can change them.
set_txt() {
    local d="$1"; shift
    : >"$DIR/txt/$d"
    local r
    for r in "$@"; do printf '%s\n' "$r" >>"$DIR/txt/$d"; done
}

sts_txt() { set_txt "$1" "\"v=STSv1; id=$2;\""; }

mx() {  # mx DOMAIN PREF HOST
    RR "$1. MX $2 $3."
    RR "$3. A $MX_ADDR"
}

mxa() {  # mxa DOMAIN PREF HOST ADDR...: an MX host with addresses of its own
    local d="$1" pref="$2" host="$3" a; shift 3
    RR "$d. MX $pref $host."
    for a in "$@"; do RR "$host. A $a"; done
}

# policy text: write_policy FILE EOL MODE MAXAGE [MX...]
write_policy() {
    local f="$1" eol="$2" mode="$3" age="$4" m; shift 4
    [ -d "${f%/*}" ] || mkdir -p "${f%/*}"
    {
        printf 'version: STSv1%s' "$eol"
        printf 'mode: %s%s' "$mode" "$eol"
        for m in "$@"; do printf 'mx: %s%s' "$m" "$eol"; done
        printf 'max_age: %s%s' "$age" "$eol"
    } >"$f"
}


# ---- certificates ----------------------------------------------------------

make_ca() {
    local c="$DIR/ca"
    mkdir -p "$c/newcerts"
    : >"$c/index.txt"
    echo 1000 >"$c/serial"
    SERIAL_BASE="$(date +%s)"
    mint req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$c/ca.key" -out "$DIR/ca.crt" -days 3650 -sha256 \
        -subj "/O=mtasts-milter test world/CN=MTA-STS World Test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
    put "$c/ca.cnf" <<EOF
[ ca ]
default_ca = world
[ world ]
dir = $c
database = $c/index.txt
new_certs_dir = $c/newcerts
serial = $c/serial
certificate = $DIR/ca.crt
private_key = $c/ca.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
EOF
}

# leaf NAME SAN [expired]: DIR/certs/NAME.{crt,key}, issued by the CA for
# the DNS name SAN (one openssl call for a good one: up stays fast); SAN may
# be several names, separated by spaces (the CN is the first)
LEAF_SERIAL=0
leaf() {
    local name="$1" san="$2" how="${3:-}" crt="$DIR/certs/$1.crt" key="$DIR/certs/$1.key"
    local sans="DNS:${2// /,DNS:}"
    san="${san%% *}"
    LEAF_SERIAL=$((LEAF_SERIAL + 1))
    if [ "$how" = expired ]; then
        local ext="$DIR/certs/$name.ext" csr="$DIR/certs/$name.csr"
        printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\nauthorityKeyIdentifier=keyid\n' \
            "$sans" >"$ext"
        mint req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout "$key" -out "$csr" -subj "/CN=$san" 2>/dev/null
        mint ca -batch -config "$DIR/ca/ca.cnf" -notext \
            -startdate 20200101000000Z -enddate 20200201000000Z \
            -extfile "$ext" -in "$csr" -out "$crt" 2>/dev/null
        rm -f "$csr" "$ext"
    else
        mint req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout "$key" -out "$crt" -subj "/CN=$san" \
            -CA "$DIR/ca.crt" -CAkey "$DIR/ca/ca.key" -days 365 -sha256 \
            -set_serial "$((SERIAL_BASE * 1000 + LEAF_SERIAL))" \
            -addext "basicConstraints=critical,CA:FALSE" \
            -addext "keyUsage=critical,digitalSignature" \
            -addext "extendedKeyUsage=serverAuth" \
            -addext "subjectAltName=$sans" 2>/dev/null
    fi
}

selfsigned() {
    local name="$1" san="$2"
    mint req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$DIR/certs/$name.key" -out "$DIR/certs/$name.crt" -days 365 \
        -subj "/CN=$san" -addext "subjectAltName=DNS:$san" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "extendedKeyUsage=serverAuth" 2>/dev/null
}

# ---- nginx -----------------------------------------------------------------

# vhost DOMAIN [CERTNAME] [EXTRA-LOCATION-BODY]: nginx server for
# mta-sts.DOMAIN, DNS A record, certificate (unless CERTNAME is given, one
# for mta-sts.DOMAIN from the CA)
vhost() {
    local d="$1" cert="${2:-}" extra="${3:-}" host="mta-sts.$1"
    RR "$host. A $HTTPS_ADDR"
    if [ -z "$cert" ]; then
        leaf "$host" "$host"
        cert="$host"
    fi
    mkdir -p "$DIR/www/$host/.well-known"
    append "$DIR/nginx.conf" <<EOF
    server {
        listen $HTTPS_ADDR:$HTTPS_PORT ssl;
        server_name $host;
        ssl_certificate $DIR/certs/$cert.crt;
        ssl_certificate_key $DIR/certs/$cert.key;
        root $DIR/www/$host;
        location = /.well-known/mta-sts.txt {
$extra
        }
    }
EOF
}

nginx_head() {
    put "$DIR/nginx.conf" <<EOF
# generated by tests/world/world.sh
user root;
worker_processes 1;
daemon on;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log info;
events { worker_connections 512; }
http {
    types { }
    default_type text/plain;
    charset off;
    etag off;
    server_tokens off;
    server_names_hash_max_size 1024;
    gzip off;
    sendfile off;
    keepalive_timeout 10s;
    client_body_temp_path $DIR/nginx-tmp/body;
    proxy_temp_path $DIR/nginx-tmp/proxy;
    fastcgi_temp_path $DIR/nginx-tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx-tmp/uwsgi;
    scgi_temp_path $DIR/nginx-tmp/scgi;
    log_format world '\$time_iso8601 \$server_addr sni=\$ssl_server_name host=\$host "\$request" \$status \$body_bytes_sent';
    access_log $DIR/nginx-access.log world;
    ssl_protocols TLSv1.2 TLSv1.3;

    # unknown SNI / no SNI
    server {
        listen $HTTPS_ADDR:$HTTPS_PORT ssl default_server;
        server_name _;
        ssl_certificate $DIR/certs/default.invalid.crt;
        ssl_certificate_key $DIR/certs/default.invalid.key;
        return 421;
    }
    # readiness probe of world.sh
    server {
        listen $HTTPS_ADDR:$HTTPS_PORT ssl;
        server_name world-ready.test;
        ssl_certificate $DIR/certs/default.invalid.crt;
        ssl_certificate_key $DIR/certs/default.invalid.key;
        access_log off;
        location / { return 200 "ready\\n"; }
    }
EOF
}

# ---- building the world ------------------------------------------------------

# a standard domain: TXT id, policy host with a policy, one MX
std_domain() {  # std_domain DOMAIN MODE [EOL]
    local d="$1" mode="$2" eol="${3:-$'\n'}"
    sts_txt "$d" "20240101000000"
    mx "$d" 10 "mx1.$d"
    vhost "$d"
    if [ "$mode" = none ]; then
        write_policy "$DIR/www/mta-sts.$d/.well-known/mta-sts.txt" "$eol" none 86400
    else
        write_policy "$DIR/www/mta-sts.$d/.well-known/mta-sts.txt" "$eol" "$mode" 86400 "mx1.$d"
    fi
}

# a domain with a valid TXT record and MX whose policy host misbehaves
bad_host_domain() {  # DOMAIN
    sts_txt "$1" "20240101000000"
    mx "$1" 10 "mx1.$1"
}

build_domains() {
    local d i body pad

    # enforce.test: the reference domain (CRLF policy, RFC 8461 example style)
    sts_txt enforce.test "20240101T000000"
    mx enforce.test 10 mx1.enforce.test
    mx enforce.test 20 backup.mx.enforce.test
    vhost enforce.test
    write_policy "$DIR/www/mta-sts.enforce.test/.well-known/mta-sts.txt" $'\r\n' enforce 86400 \
        mx1.enforce.test "*.mx.enforce.test"

    std_domain testing.test testing
    std_domain none.test none

    # notxt.test: _mta-sts.notxt.test exists (A record) but has no TXT: NODATA
    std_domain notxt.test enforce
    rm -f "$DIR/txt/notxt.test"
    RR "_mta-sts.notxt.test. A 127.0.0.1"
    # nxdomain.test: nothing at all (no record written)

    # two.test: two v=STSv1 records
    std_domain two.test enforce
    set_txt two.test '"v=STSv1; id=1;"' '"v=STSv1; id=2;"'
    # other.test: only a non-STS TXT
    std_domain other.test enforce
    set_txt other.test '"v=spf1 -all"'
    # badtxt.test: v=STSv1 record with an invalid id
    std_domain badtxt.test enforce
    set_txt badtxt.test '"v=STSv1; id=not/valid!;"'

    # fetch failures
    bad_host_domain redirect.test
    vhost redirect.test "" "            return 301 https://mta-sts.enforce.test/.well-known/mta-sts.txt;"
    bad_host_domain notfound.test
    vhost notfound.test          # no file: 404
    rmdir "$DIR/www/mta-sts.notfound.test/.well-known"
    bad_host_domain badtype.test
    vhost badtype.test "" "            default_type text/html;"
    write_policy "$DIR/www/mta-sts.badtype.test/.well-known/mta-sts.txt" $'\n' enforce 86400 mx1.badtype.test
    bad_host_domain badpolicy.test
    vhost badpolicy.test
    printf 'version: STSv1\nmode: sometimes\nmx: mx1.badpolicy.test\nmax_age: soon\n' \
        >"$DIR/www/mta-sts.badpolicy.test/.well-known/mta-sts.txt"

    # size limits: exact.test is exactly 65536 bytes (valid), huge.test 65537
    for d in exact.test huge.test; do
        bad_host_domain "$d"
        vhost "$d"
        body="$(printf 'version: STSv1\nmode: enforce\nmx: mx1.%s\nmax_age: 86400\n' "$d")"$'\n'
        local want=65536
        [ "$d" = huge.test ] && want=65537
        # padding line "x-padding: AAAA...\n" fills up to the size
        pad=$((want - ${#body} - 11 - 1))  # 11 = length of "x-padding: "
        { printf '%s' "$body"; printf 'x-padding: '; head -c "$pad" /dev/zero | tr '\0' 'a'; printf '\n'; } \
            >"$DIR/www/mta-sts.$d/.well-known/mta-sts.txt"
    done

    # chunked transfer encoding (nginx sub_filter drops Content-Length)
    local chunky="            sub_filter_types text/plain;
            sub_filter 'no-such-string-in-any-policy' 'x';"
    bad_host_domain chunked.test
    vhost chunked.test "" "$chunky"
    body="$(printf 'version: STSv1\nmode: enforce\nmx: mx1.chunked.test\nmax_age: 86400\n')"$'\n'
    { printf '%s' "$body"; printf 'x-padding: '; head -c 70000 /dev/zero | tr '\0' 'b'; printf '\n'; } \
        >"$DIR/www/mta-sts.chunked.test/.well-known/mta-sts.txt"
    std_domain chunkedok.test enforce
    vhost_patch_chunked chunkedok.test "$chunky"

    # hangs and refusals
    bad_host_domain hang.test
    RR "mta-sts.hang.test. A $HANG_ADDR"
    bad_host_domain hangtls.test
    RR "mta-sts.hangtls.test. A $HANGTLS_ADDR"
    leaf mta-sts.hangtls.test mta-sts.hangtls.test
    bad_host_domain refused.test
    RR "mta-sts.refused.test. A $REFUSED_ADDR"
    bad_host_domain nohost.test   # mta-sts.nohost.test has no address
    # NAME.flood.test, any NAME (a wildcard): a TXT record, an MX and a policy
    # host that accepts TCP and never answers; endless fresh domains whose
    # lookups hang (tests/faults/test_flood.sh)
    RR "*.flood.test. TXT \"v=STSv1; id=20240101000000;\""
    RR "*.flood.test. MX 10 mx1.flood.test."
    RR "*.flood.test. A $HANG_ADDR"

    # certificate failures (SNI selects the bad certificate)
    leaf wrongname mta-sts.someone-else.test
    leaf expired mta-sts.expired.test expired
    selfsigned selfsigned mta-sts.selfsigned.test
    for d in wrongname expired selfsigned; do
        bad_host_domain "$d.test"
        vhost "$d.test" "$d"
        write_policy "$DIR/www/mta-sts.$d.test/.well-known/mta-sts.txt" $'\n' enforce 86400 "mx1.$d.test"
    done

    # policy delegation (RFC 8461 §8.2)
    std_domain target.test enforce
    sts_txt target.test "target20240101"
    write_policy "$DIR/www/mta-sts.target.test/.well-known/mta-sts.txt" $'\n' testing 604800 mx1.target.test
    std_domain cname.test enforce
    rm -f "$DIR/txt/cname.test"
    RR "_mta-sts.cname.test. CNAME _mta-sts.target.test."

    # MX that matches no pattern of the policy
    std_domain mxmismatch.test enforce
    write_policy "$DIR/www/mta-sts.mxmismatch.test/.well-known/mta-sts.txt" $'\n' enforce 86400 \
        mx.elsewhere.test "*.elsewhere.test"

    # changing.test: set-policy changes it at run time
    std_domain changing.test enforce
    sts_txt changing.test 1

    # bulk: d01.test .. d50.test
    for i in $(seq -w 1 50); do
        std_domain "d$i.test" enforce
    done

    # child zones: insecure (unsigned, no DS), bogus (DS matches no key),
    # servfail (name server without address), timeout (name server address
    # where nothing listens)
    RR "insecure.test. NS ns1.test."
    RR "bogus.test. NS ns1.test."
    # servfail.test: its only name server has no address (NXDOMAIN), so
    # unbound answers SERVFAIL at once
    RR "servfail.test. NS ns.does-not-exist.test."
    # timeout.test: its name server address has no listener; unbound keeps
    # retrying and answers late (tens of seconds) or not at all
    RR "timeout.test. NS ns.timeout.test."
    RR "ns.timeout.test. A $DEAD_DNS_ADDR"
    # stsservfail.test: its MX works, but its _mta-sts TXT lookup SERVFAILs
    # (a CNAME into servfail.test): a status that cannot be learnt for a
    # domain mail can still reach (the policy map's map_unknown)
    mx stsservfail.test 10 mx1.stsservfail.test
    RR "_mta-sts.stsservfail.test. CNAME _mta-sts.servfail.test."
    for d in insecure.test bogus.test servfail.test timeout.test; do
        mkdir -p "$DIR/www/mta-sts.$d/.well-known"
        write_policy "$DIR/www/mta-sts.$d/.well-known/mta-sts.txt" $'\n' enforce 86400 "mx1.$d"
        leaf "mta-sts.$d" "mta-sts.$d"
        append "$DIR/nginx.conf" <<EOF
    server {
        listen $HTTPS_ADDR:$HTTPS_PORT ssl;
        server_name mta-sts.$d;
        ssl_certificate $DIR/certs/mta-sts.$d.crt;
        ssl_certificate_key $DIR/certs/mta-sts.$d.key;
        root $DIR/www/mta-sts.$d;
        location = /.well-known/mta-sts.txt { }
    }
EOF
    done
    build_mx_domains

    for d in insecure.test bogus.test; do
        put "$DIR/zones/$d.zone" <<EOF
\$ORIGIN $d.
\$TTL $ZONE_TTL
@ SOA ns1.test. hostmaster.test. 1 3600 600 86400 $NEG_TTL
@ NS ns1.test.
@ MX 10 mx1.$d.
mx1 A $MX_ADDR
_mta-sts TXT "v=STSv1; id=20240101000000;"
mta-sts A $HTTPS_ADDR
EOF
    done
    cat "$DIR/zones/insecure.extra" >>"$DIR/zones/insecure.test.zone"
}

# an enforce domain (TXT, policy host, policy with the mx patterns given)
# whose MX records the caller adds: mx_domain DOMAIN MODE PATTERN...
mx_domain() {
    local d="$1" mode="$2"; shift 2
    sts_txt "$d" "20240101000000"
    vhost "$d"
    write_policy "$DIR/www/mta-sts.$d/.well-known/mta-sts.txt" $'\n' "$mode" 86400 "$@"
}

# Domains whose MX hosts run STARTTLS SMTP servers (SMTP_LISTENERS, started
# by cmd_up). Certificates from the world's CA unless said otherwise.
build_mx_domains() {
    local i c="$DIR/certs"
    leaf mx.provider.test "mx.provider.test mx.cnamemx.test"
    leaf mx.goodmx.test mx.goodmx.test
    leaf mx.expiredmx.test mx.expiredmx.test expired
    leaf mx.wrongnamemx.test mx.someone-else.test
    leaf mx.tls10mx.test mx.tls10mx.test
    selfsigned bad.mixedmx.test bad.mixedmx.test
    SMTP_LISTENERS=(
        "$PROVIDER_MX_ADDR:$SMTP_PORT:good:$c/mx.provider.test.crt:$c/mx.provider.test.key"
        "$GOODMX_ADDR1:$SMTP_PORT:good:$c/mx.goodmx.test.crt:$c/mx.goodmx.test.key"
        "$GOODMX_ADDR2:$SMTP_PORT:good:$c/mx.goodmx.test.crt:$c/mx.goodmx.test.key"
        "$EXPIREDMX_ADDR:$SMTP_PORT:expired:$c/mx.expiredmx.test.crt:$c/mx.expiredmx.test.key"
        "$WRONGNAMEMX_ADDR:$SMTP_PORT:wrongname:$c/mx.wrongnamemx.test.crt:$c/mx.wrongnamemx.test.key"
        "$NOSTARTTLS_ADDR:$SMTP_PORT:nostarttls:$c/mx.goodmx.test.crt:$c/mx.goodmx.test.key"
        "$TLS10MX_ADDR:$SMTP_PORT:tls10:$c/mx.tls10mx.test.crt:$c/mx.tls10mx.test.key"
        "$SELFSIGNEDMX_ADDR:$SMTP_PORT:selfsigned:$c/bad.mixedmx.test.crt:$c/bad.mixedmx.test.key"
        "$SILENTMX_ADDR:$SMTP_PORT:silent"
        "$TLS11MX_ADDR:$SMTP_PORT:tls11:$c/mx.tls11mx.test.crt:$c/mx.tls11mx.test.key"
        "$UNTRUSTEDMX_ADDR:$SMTP_PORT:untrusted:$c/mx.untrustedmx.test.crt:$c/mx.untrustedmx.test.key"
        "$HUGEBANNER_ADDR:$SMTP_PORT:hugebanner:$c/mx.goodmx.test.crt:$c/mx.goodmx.test.key"
        "$BINARYBANNER_ADDR:$SMTP_PORT:binary"
        "$ENDLESS_ADDR:$SMTP_PORT:manylines"
        "$LONGLINE_ADDR:$SMTP_PORT:longline"
        "$HANGTLSMX_ADDR:$SMTP_PORT:hangtls:$c/mx.hangtlsmx.test.crt:$c/mx.hangtlsmx.test.key"
        "$DRIPMX_ADDR:$SMTP_PORT:drip"
    )

    RR "mx.provider.test. A $PROVIDER_MX_ADDR"
    mx_domain goodmx.test enforce mx.goodmx.test
    mxa goodmx.test 10 mx.goodmx.test "$GOODMX_ADDR1" "$GOODMX_ADDR2"
    mx_domain expiredmx.test enforce mx.expiredmx.test
    mxa expiredmx.test 10 mx.expiredmx.test "$EXPIREDMX_ADDR"
    mx_domain wrongnamemx.test enforce mx.wrongnamemx.test
    mxa wrongnamemx.test 10 mx.wrongnamemx.test "$WRONGNAMEMX_ADDR"
    mx_domain nostarttls.test enforce mx.nostarttls.test
    mxa nostarttls.test 10 mx.nostarttls.test "$NOSTARTTLS_ADDR"
    mx_domain tls10mx.test enforce mx.tls10mx.test
    mxa tls10mx.test 10 mx.tls10mx.test "$TLS10MX_ADDR"
    # one bad (self-signed), one good (the provider), both in the policy
    mx_domain mixedmx.test enforce bad.mixedmx.test mx.provider.test
    mxa mixedmx.test 10 bad.mixedmx.test "$SELFSIGNEDMX_ADDR"
    RR "mixedmx.test. MX 20 mx.provider.test."
    # the provider's customers: one enforce, one testing
    mx_domain shared1.test enforce mx.provider.test
    RR "shared1.test. MX 10 mx.provider.test."
    mx_domain shared2.test testing mx.provider.test
    RR "shared2.test. MX 10 mx.provider.test."
    # null MX (RFC 7505), no MTA-STS
    RR "nullmx.test. MX 0 ."
    # the MX name is a CNAME to the provider (whose certificate names it)
    mx_domain cnamemx.test enforce mx.cnamemx.test
    RR "cnamemx.test. MX 10 mx.cnamemx.test."
    RR "mx.cnamemx.test. CNAME mx.provider.test."
    # the good MX is not in the policy; the one that is has no STARTTLS
    mx_domain mismatchmx.test enforce mx1.mismatchmx.test
    RR "mismatchmx.test. MX 10 mx.provider.test."
    mxa mismatchmx.test 20 mx1.mismatchmx.test "$NOSTARTTLS_ADDR"
    # hostile: an MX that never answers; one where nothing listens; 30 MX
    mx_domain hangmx.test enforce mx.hangmx.test
    mxa hangmx.test 10 mx.hangmx.test "$SILENTMX_ADDR"
    mx_domain downmx.test enforce mx.downmx.test
    mxa downmx.test 10 mx.downmx.test "$DOWNMX_ADDR"
    mx_domain manymx.test enforce "*.manymx.test"
    for i in $(seq -w 1 30); do
        mxa manymx.test "$i" "mx$i.manymx.test" "$PROVIDER_MX_ADDR"
    done
    # 32 MX names in one /24 that drops SYNs (tests/faults/test_probe_starve.sh)
    mx_domain synflood.test enforce "*.synflood.test"
    for i in $(seq 1 32); do
        mxa synflood.test "$i" "mx$i.synflood.test" "$SYNDROP_NET.$i"
    done
    build_probe_edge_domains
    build_dane_domains
}

spki_sha256() {  # the 3 1 1 / 2 1 1 data of a certificate file
    openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
        sha256sum | cut -d' ' -f1
}

# DANE (RFC 7672) in the signed zone test. (tests/world/test_dane.sh):
#   daneee.test      DANE-EE 3 1 1 on a self-signed certificate (wrong name)
#   daneta.test      DANE-TA 2 1 1 on a private CA the server sends
#   danebad.test     3 1 1 that does not match a WebPKI-valid certificate
#   danefail.test    the TLSA lookup SERVFAILs (_tcp below the MX host is
#                    delegated, insecurely, to a name server with no address)
#   danepkix.test    only PKIX-TA(0)/PKIX-EE(1) records: unusable for SMTP
#   stsdane.test     MTA-STS enforce and a matching 3 1 1
#   stsdanebad.test  MTA-STS enforce (WebPKI passes) and a mismatching 3 1 1
#   stsdaneee.test   MTA-STS enforce whose policy matches its MX, the
#                    self-signed DANE-EE server of daneee.test (3 1 1
#                    matches; WebPKI fails): DANE verifies, MTA-STS does not
#   daneinsecure.test  MX mx2.insecure.test: TLSA in the unsigned zone (ignored)
#   dd01.test .. dd50.test  as stsdane.test, each its own MX host (benchmark)
build_dane_domains() {
    local c="$DIR/certs" h ee pkix
    selfsigned dane-ee not-the-mx.invalid
    mkdir -p "$DIR/daneca"
    mint req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$DIR/daneca/ca.key" -out "$DIR/daneca/ca.crt" -days 3650 -sha256 \
        -subj "/O=mtasts-milter test world/CN=Private DANE-TA CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    LEAF_SERIAL=$((LEAF_SERIAL + 1))
    mint req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$c/mx.daneta.test.key" -out "$c/mx.daneta.test.leaf" -subj "/CN=mx.daneta.test" \
        -CA "$DIR/daneca/ca.crt" -CAkey "$DIR/daneca/ca.key" -days 365 -sha256 \
        -set_serial "$((SERIAL_BASE * 1000 + LEAF_SERIAL))" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "extendedKeyUsage=serverAuth" \
        -addext "subjectAltName=DNS:mx.daneta.test" 2>/dev/null
    cat "$c/mx.daneta.test.leaf" "$DIR/daneca/ca.crt" >"$c/mx.daneta.test.crt"
    leaf dane-webpki "mx.danebad.test mx.danefail.test mx.danepkix.test mx.stsdane.test mx.stsdanebad.test mx2.insecure.test"
    SMTP_LISTENERS+=(
        "$DANEEE_ADDR:$SMTP_PORT:good:$c/dane-ee.crt:$c/dane-ee.key"
        "$DANETA_ADDR:$SMTP_PORT:good:$c/mx.daneta.test.crt:$c/mx.daneta.test.key"
        "$DANEPKIX_ADDR:$SMTP_PORT:good:$c/dane-webpki.crt:$c/dane-webpki.key"
    )
    ee=$(spki_sha256 "$c/dane-ee.crt")
    pkix=$(spki_sha256 "$c/dane-webpki.crt")
    mxa daneee.test 10 mx.daneee.test "$DANEEE_ADDR"
    RR "_25._tcp.mx.daneee.test. TLSA 3 1 1 $ee"
    mxa daneta.test 10 mx.daneta.test "$DANETA_ADDR"
    RR "_25._tcp.mx.daneta.test. TLSA 2 1 1 $(spki_sha256 "$DIR/daneca/ca.crt")"
    for h in danebad danefail danepkix; do
        mxa "$h.test" 10 "mx.$h.test" "$DANEPKIX_ADDR"
    done
    RR "_25._tcp.mx.danebad.test. TLSA 3 1 1 $ee"
    RR "_tcp.mx.danefail.test. NS ns.does-not-exist.test."
    RR "_25._tcp.mx.danepkix.test. TLSA 1 1 1 $pkix"
    RR "_25._tcp.mx.danepkix.test. TLSA 0 1 1 $(spki_sha256 "$DIR/ca.crt")"
    mx_domain stsdane.test enforce mx.stsdane.test
    mxa stsdane.test 10 mx.stsdane.test "$DANEPKIX_ADDR"
    RR "_25._tcp.mx.stsdane.test. TLSA 3 1 1 $pkix"
    mx_domain stsdanebad.test enforce mx.stsdanebad.test
    mxa stsdanebad.test 10 mx.stsdanebad.test "$DANEPKIX_ADDR"
    RR "_25._tcp.mx.stsdanebad.test. TLSA 3 1 1 $ee"
    mx_domain stsdaneee.test enforce mx.stsdaneee.test
    mxa stsdaneee.test 10 mx.stsdaneee.test "$DANEEE_ADDR"
    RR "_25._tcp.mx.stsdaneee.test. TLSA 3 1 1 $ee"
    # bulk, as stsdane.test: dd01.test .. dd50.test (tests/bench/bench_milter.sh)
    for h in $(seq -w 1 50); do
        mx_domain "dd$h.test" enforce "mx.dd$h.test"
        mxa "dd$h.test" 10 "mx.dd$h.test" "$DANEPKIX_ADDR"
        RR "_25._tcp.mx.dd$h.test. TLSA 3 1 1 $pkix"
    done
    RR "daneinsecure.test. MX 10 mx2.insecure.test."
    # added to the unsigned insecure.test zone once it is written
    printf 'mx2 A %s\n_25._tcp.mx2 TLSA 3 1 1 %s\n' "$DANEPKIX_ADDR" "$ee" >"$DIR/zones/insecure.extra"
}

# other_ca_leaf NAME SAN: DIR/certs/NAME.{crt,key} for SAN, issued by a CA
# of its own (DIR/otherca) that nothing trusts (ca.crt does not hold it)
other_ca_leaf() {
    local o="$DIR/otherca"
    if [ ! -f "$o/ca.crt" ]; then
        mkdir -p "$o"
        mint req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout "$o/ca.key" -out "$o/ca.crt" -days 3650 -sha256 \
            -subj "/O=mtasts-milter test world/CN=Untrusted Other CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    fi
    LEAF_SERIAL=$((LEAF_SERIAL + 1))
    mint req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$DIR/certs/$1.key" -out "$DIR/certs/$1.crt" -subj "/CN=$2" \
        -CA "$o/ca.crt" -CAkey "$o/ca.key" -days 365 -sha256 \
        -set_serial "$((SERIAL_BASE * 1000 + LEAF_SERIAL))" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature" \
        -addext "extendedKeyUsage=serverAuth" \
        -addext "subjectAltName=DNS:$2" 2>/dev/null
}

# The probe's edge cases (issue 10): one enforce domain per hostile or
# broken MX host, and the slow hosts of the concurrency test
# (slowN.test -> mx.slowN.test; 1-4 on SLOW_NET1, 5-8 on SLOW_NET2).
build_probe_edge_domains() {
    local c="$DIR/certs" d a i
    leaf mx.tls11mx.test mx.tls11mx.test
    other_ca_leaf mx.untrustedmx.test mx.untrustedmx.test
    leaf mx.hangtlsmx.test mx.hangtlsmx.test
    for d in tls11mx:$TLS11MX_ADDR untrustedmx:$UNTRUSTEDMX_ADDR \
             hugebannermx:$HUGEBANNER_ADDR binarybannermx:$BINARYBANNER_ADDR \
             endlessmx:$ENDLESS_ADDR longlinemx:$LONGLINE_ADDR hangtlsmx:$HANGTLSMX_ADDR \
             dripmx:$DRIPMX_ADDR; do
        mx_domain "${d%%:*}.test" enforce "mx.${d%%:*}.test"
        mxa "${d%%:*}.test" 10 "mx.${d%%:*}.test" "${d#*:}"
    done
    leaf mx.slow.test "$(echo mx.slow{1..8}.test)"
    for i in 1 2 3 4 5 6 7 8; do
        if [ "$i" -le 4 ]; then a="$SLOW_NET1.$((20 + i))"; else a="$SLOW_NET2.$((20 + i))"; fi
        SMTP_LISTENERS+=("$a:$SMTP_PORT:slow:$c/mx.slow.test.crt:$c/mx.slow.test.key")
        mx_domain "slow$i.test" enforce "mx.slow$i.test"
        mxa "slow$i.test" 10 "mx.slow$i.test" "$a"
    done
}

# chunkedok.test was made by std_domain; give its location the chunking body
vhost_patch_chunked() {
    local d="$1" body="$2" host="mta-sts.$1" tmp="$DIR/nginx.conf.tmp"
    awk -v host="$host" -v body="$body" '
        $1 == "server_name" && $2 == host ";" { inhost = 1 }
        { print }
        inhost && /location = \/\.well-known\/mta-sts\.txt/ { print body; inhost = 0 }
    ' "$DIR/nginx.conf" >"$tmp"
    mv "$tmp" "$DIR/nginx.conf"
}

make_keys() {
    local k
    mkdir -p "$DIR/keys"
    [ -n "$CACHED" ] || (
        cd "$DIR/keys"
        k="$(ldns-keygen -a ECDSAP256SHA256 -k test.)"; echo "$k" >test.ksk
        k="$(ldns-keygen -a ECDSAP256SHA256 test.)"; echo "$k" >test.zsk
        k="$(ldns-keygen -a ECDSAP256SHA256 -k bogus.test.)"; echo "$k" >bogus.ksk
        k="$(ldns-keygen -a ECDSAP256SHA256 bogus.test.)"; echo "$k" >bogus.zsk
        # the key whose DS goes into test. for bogus.test: never in bogus.test
        k="$(ldns-keygen -a ECDSAP256SHA256 -k bogus.test.)"; echo "$k" >bogus.decoy
        rm -f ./*.ds
    )
    ldns-key2ds -n -2 "$DIR/keys/$(cat "$DIR/keys/test.ksk").key" >"$DIR/trust-anchor"
    ldns-key2ds -n -2 "$DIR/keys/$(cat "$DIR/keys/bogus.decoy").key" >"$DIR/zones/bogus.ds"
}

sign_zone() {  # sign_zone ZONEFILE ORIGIN KEYBASE...
    local zf="$1" origin="$2"; shift 2
    local keys=() k
    for k in "$@"; do keys+=("$DIR/keys/$k"); done
    ldns-signzone -o "$origin" -f "$zf.signed.tmp" "$zf" "${keys[@]}"
    mv "$zf.signed.tmp" "$zf.signed"
}

# assemble test.zone from the static part, the TXT files and the serial,
# then sign it
build_test_zone() {
    local serial zf="$DIR/zones/test.zone" d r
    serial="$(<"$DIR/state/serial")"
    {
        echo "\$ORIGIN test."
        echo "\$TTL $ZONE_TTL"
        echo "test. SOA ns1.test. hostmaster.test. $serial 3600 600 86400 $NEG_TTL"
        echo "test. NS ns1.test."
        echo "ns1.test. A $AUTH_ADDR"
        cat "$DIR/zones/test.base"
        cat "$DIR/zones/bogus.ds"
        for d in "$DIR"/txt/*; do
            [ -e "$d" ] || continue
            while IFS= read -r r; do
                [ -n "$r" ] && echo "_mta-sts.${d##*/}. TXT $r"
            done <"$d"
        done
    } >"$zf"
    sign_zone "$zf" test. "$(cat "$DIR/keys/test.ksk")" "$(cat "$DIR/keys/test.zsk")"
}

write_nsd_conf() {
    put "$DIR/nsd.conf" <<EOF
# generated by tests/world/world.sh
server:
    ip-address: $AUTH_ADDR
    port: $DNS_PORT
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "$DIR/zones"
    database: ""
    zonelistfile: "$DIR/nsd.zonelist"
    xfrdfile: "$DIR/nsd-xfrd.state"
    xfrdir: "$DIR/nsd-xfr"
    pidfile: "$DIR/nsd.pid"
    logfile: "$DIR/nsd.log"
    server-count: 1
    verbosity: 1
    hide-version: yes
    reuseport: no
    zonefiles-check: yes
remote-control:
    control-enable: yes
    control-interface: "$DIR/nsd.ctl"
zone:
    name: "test."
    zonefile: "test.zone.signed"
zone:
    name: "bogus.test."
    zonefile: "bogus.test.zone.signed"
zone:
    name: "insecure.test."
    zonefile: "insecure.test.zone"
EOF
}

write_unbound_conf() {
    put "$DIR/root.hints" <<EOF
; no real root: everything stays on loopback (nsd answers REFUSED for .)
. 3600000 NS world-root.test.
world-root.test. 3600000 A $AUTH_ADDR
EOF
    put "$DIR/unbound.conf" <<EOF
# generated by tests/world/world.sh
server:
    interface: $RES_ADDR
    port: $DNS_PORT
    outgoing-interface: $RES_ADDR
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "$DIR"
    pidfile: "$DIR/unbound.pid"
    logfile: "$DIR/unbound.log"
    use-syslog: no
    log-time-ascii: yes
    verbosity: 1
    log-queries: yes
    log-servfail: yes
    val-log-level: 2
    num-threads: 1
    so-reuseport: no
    do-daemonize: yes
    do-not-query-localhost: no
    module-config: "validator iterator"
    trust-anchor-file: "$DIR/trust-anchor"
    root-hints: "$DIR/root.hints"
    qname-minimisation: no
    harden-referral-path: no
    prefetch: no
    aggressive-nsec: no
    serve-expired: no
    cache-max-negative-ttl: $NEG_TTL
    val-bogus-ttl: 5
    infra-host-ttl: 10
    edns-buffer-size: 1232
    # nothing outside loopback, ever
    local-zone: "." refuse
    local-zone: "test." transparent
    # no PTR lookups for our addresses go out
    local-zone: "127.in-addr.arpa." static
stub-zone:
    name: "test."
    stub-addr: $AUTH_ADDR@$DNS_PORT
    stub-prime: no
remote-control:
    control-enable: yes
    control-interface: $RES_ADDR
    control-port: $UNBOUND_CTL_PORT
    control-use-cert: no
EOF
}

write_env() {
    put "$DIR/env" <<EOF
# generated by tests/world/world.sh; source it, or eval "\$(world.sh env DIR)"
MTS_WORLD_DIR='$DIR'
MTS_WORLD_AUTH_ADDR='$AUTH_ADDR'
MTS_WORLD_AUTH_PORT='$DNS_PORT'
MTS_WORLD_RESOLVER_ADDR='$RES_ADDR'
MTS_WORLD_RESOLVER_PORT='$DNS_PORT'
MTS_WORLD_DEAD_DNS_ADDR='$DEAD_DNS_ADDR'
MTS_WORLD_RESOLV_CONF='$DIR/resolv.conf'
MTS_WORLD_TRUST_ANCHOR='$DIR/trust-anchor'
MTS_WORLD_CA_FILE='$DIR/ca.crt'
MTS_WORLD_HTTPS_ADDR='$HTTPS_ADDR'
MTS_WORLD_HANG_ADDR='$HANG_ADDR'
MTS_WORLD_HANGTLS_ADDR='$HANGTLS_ADDR'
MTS_WORLD_REFUSED_ADDR='$REFUSED_ADDR'
MTS_WORLD_HTTPS_PORT='$HTTPS_PORT'
MTS_WORLD_MX_ADDR='$MX_ADDR'
MTS_WORLD_SMTP_PORT='$SMTP_PORT'
MTS_WORLD_SMTP_LOG='$DIR/smtp.log'
MTS_WORLD_PROVIDER_MX_ADDR='$PROVIDER_MX_ADDR'
MTS_WORLD_SILENTMX_ADDR='$SILENTMX_ADDR'
MTS_WORLD_SYNDROP_NET='$SYNDROP_NET'
MTS_WORLD_CONF='$DIR/mtasts-milter.conf'
MTS_WORLD_CACHE_DB='$DIR/cache.sqlite'
MTS_WORLD_UNBOUND_CONF='$DIR/unbound.conf'
MTS_WORLD_LIBUNBOUND_CONF='$DIR/libunbound.conf'
MTS_WORLD_UNBOUND_LOG='$DIR/unbound.log'
MTS_WORLD_NGINX_ACCESS_LOG='$DIR/nginx-access.log'
MTS_WORLD_HANG_LOG='$DIR/hangserver.log'
MTS_WORLD_WWW='$DIR/www'
MTS_WORLD_SCRIPT='$HERE/world.sh'
export MTS_WORLD_DIR MTS_WORLD_AUTH_ADDR MTS_WORLD_AUTH_PORT MTS_WORLD_RESOLVER_ADDR
export MTS_WORLD_RESOLVER_PORT MTS_WORLD_DEAD_DNS_ADDR MTS_WORLD_RESOLV_CONF
export MTS_WORLD_TRUST_ANCHOR MTS_WORLD_CA_FILE MTS_WORLD_HTTPS_ADDR MTS_WORLD_HANG_ADDR
export MTS_WORLD_HANGTLS_ADDR MTS_WORLD_REFUSED_ADDR MTS_WORLD_HTTPS_PORT MTS_WORLD_MX_ADDR
export MTS_WORLD_CONF MTS_WORLD_CACHE_DB MTS_WORLD_UNBOUND_CONF MTS_WORLD_UNBOUND_LOG
export MTS_WORLD_LIBUNBOUND_CONF
export MTS_WORLD_SMTP_PORT MTS_WORLD_SMTP_LOG MTS_WORLD_PROVIDER_MX_ADDR MTS_WORLD_SILENTMX_ADDR
export MTS_WORLD_NGINX_ACCESS_LOG MTS_WORLD_HANG_LOG MTS_WORLD_WWW MTS_WORLD_SCRIPT
EOF
    put "$DIR/resolv.conf" <<EOF
# the test world's validating resolver (unbound)
nameserver $RES_ADDR
EOF
    # libunbound answers NXDOMAIN for test. by itself (a default local zone,
    # RFC 6761) unless told otherwise; the product has to load this file
    # (ub_ctx_config) or call ub_ctx_set_option(ctx, "local-zone:",
    # "test. transparent") to resolve anything in the world.
    put "$DIR/libunbound.conf" <<EOF
# libunbound settings for the test world (ub_ctx_config)
server:
    local-zone: "test." transparent
EOF
    put "$DIR/mtasts-milter.conf" <<EOF
# test world configuration for mtasts-milter / mtasts-ctl
# unbound_conf: libunbound treats test. as a special-use name (RFC 6761
# default local zone: NXDOMAIN); this file says local-zone "test." transparent
unbound_conf = $DIR/libunbound.conf
resolv_conf = $DIR/resolv.conf
trust_anchor = $DIR/trust-anchor
ca_file = $DIR/ca.crt
cache_db = $DIR/cache.sqlite
# every MX host of the world is on loopback, which probes never reach unless allowed
probe_allow_networks = 127.0.0.0/8
EOF
}

# ---- readiness ---------------------------------------------------------------

# dns_rcode SERVER NAME TYPE [drill options] -> prints rcode (or nothing)
dns_rcode() {
    local server="$1" name="$2" type="$3"; shift 3
    drill "$@" -p "$DNS_PORT" "$name" "@$server" "$type" 2>/dev/null |
        sed -n 's/.*rcode: \([A-Z]*\),.*/\1/p' | head -n1
}

listening_tcp() {  # ADDR PORT
    ss -Hlnt 2>/dev/null | awk '{print $4}' | grep -qx "$1:$2"
}

ready() {
    case "$1" in
        nsd) [ "$(dns_rcode "$AUTH_ADDR" test. SOA)" = NOERROR ] ;;
        unbound) [ "$(dns_rcode "$RES_ADDR" test. SOA)" = NOERROR ] ;;
        nginx)
            curl -s --max-time 1 -o /dev/null --cacert "$DIR/ca.crt" \
                --resolve "world-ready.test:$HTTPS_PORT:$HTTPS_ADDR" \
                -k "https://world-ready.test/" ;;
        smtpserver)
            running "$SMTP_PID" || return 2
            local l
            [ -s "$DIR/smtpserver.pid" ] || return 1
            for l in "${SMTP_LISTENERS[@]}"; do
                listening_tcp "${l%%:*}" "$SMTP_PORT" || return 1
            done ;;
        hangserver)
            running "$HANG_PID" || return 2
            [ -s "$DIR/hangserver.pid" ] &&
                listening_tcp "$HANG_ADDR" "$HTTPS_PORT" &&
                listening_tcp "$HANGTLS_ADDR" "$HTTPS_PORT" ;;
    esac
}

wait_ready() {  # NAME LOGFILE
    local name="$1" log="$2" i
    local rc
    for ((i = 0; i < 100; i++)); do
        rc=0
        ready "$name" || rc=$?
        [ "$rc" = 0 ] && return 0
        [ "$rc" = 2 ] && break   # the process is gone: no use waiting
        sleep 0.1
    done
    note "$name did not answer within 10 s (or exited); last lines of $log:"
    tail -n 20 "$log" >&2 2>/dev/null || true
    return 1
}

# ---- commands ----------------------------------------------------------------

prepare_dir() {
    if [ -e "$DIR" ] && [ ! -d "$DIR" ]; then
        die "$DIR exists and is not a directory"
    fi
    mkdir -p "$DIR"
    if [ -n "$(ls -A "$DIR")" ] && [ ! -e "$DIR/.mts-world" ]; then
        die "$DIR is not empty and is not a test world directory; refusing to touch it"
    fi
    local s pid
    for s in $SERVERS; do
        if pid="$(pid_alive "$(server_pidfile "$s")" "$(server_comm "$s")")"; then
            die "world in $DIR is already up ($s pid $pid); run: $0 down $DIR"
        fi
    done
    # a previous world in DIR, down: start afresh
    find "$DIR" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    touch "$DIR/.mts-world"
}

check_ports() {
    local busy=() a
    for a in "$AUTH_ADDR:$DNS_PORT" "$RES_ADDR:$DNS_PORT" "$RES_ADDR:$UNBOUND_CTL_PORT" \
             "$HTTPS_ADDR:$HTTPS_PORT" "$HANG_ADDR:$HTTPS_PORT" "$HANGTLS_ADDR:$HTTPS_PORT" \
             "$DEAD_DNS_ADDR:$DNS_PORT" "$REFUSED_ADDR:$HTTPS_PORT" \
             "$PROVIDER_MX_ADDR:$SMTP_PORT" "$DOWNMX_ADDR:$SMTP_PORT"; do
        port_busy "${a%:*}" "${a##*:}" && busy+=("$a")
    done
    if [ "${#busy[@]}" -gt 0 ]; then
        die "already in use: ${busy[*]} (another world up? see: ss -lntup)"
    fi
}

# cache_get: when MTS_WORLD_CACHE holds this world.sh's keys and
# certificates of today, copies them into DIR and sets CACHED (mint and
# make_keys then keep them); cache_put, after a build without them, stores
# DIR's there (a whole directory renamed into place: readers never see half
# of one, and of two builds at once the second is dropped)
cache_dir() {
    local sum today
    sum=$(cksum <"${BASH_SOURCE[0]}")
    printf -v today '%(%Y%m%d)T' -1
    CACHE_DIR="$MTS_WORLD_CACHE/${sum// /-}-$today"
}
cache_get() {
    [ -n "${MTS_WORLD_CACHE:-}" ] || return 0
    cache_dir
    [ -d "$CACHE_DIR" ] || return 0
    cp -a "$CACHE_DIR/." "$DIR/"
    CACHED=1
}
cache_put() {
    [ -n "${MTS_WORLD_CACHE:-}" ] && [ -z "$CACHED" ] || return 0
    local tmp
    mkdir -p "$MTS_WORLD_CACHE"
    tmp=$(mktemp -d "$CACHE_DIR.XXXXXX")
    { cp -a "$DIR/ca" "$DIR/ca.crt" "$DIR/certs" "$DIR/otherca" "$DIR/daneca" "$DIR/keys" "$tmp/" &&
        mv -T "$tmp" "$CACHE_DIR" 2>/dev/null; } || rm -rf "$tmp"
}

cmd_up() {
    need_tools
    [ "$(id -u)" = 0 ] || die "must run as root (binds port 53 and 443)"
    case "$DIR" in /*) ;; *) DIR="$(pwd)/$DIR" ;; esac
    [ "${#DIR}" -le 80 ] || die "DIR path too long for nsd's control socket (max 80 chars)"
    prepare_dir
    check_ports

    mkdir -p "$DIR/zones" "$DIR/txt" "$DIR/state" "$DIR/certs" "$DIR/www" \
        "$DIR/nsd-xfr" "$DIR/nginx-tmp"
    echo 1 >"$DIR/state/serial"
    : >"$DIR/zones/test.base"

    cache_get
    make_ca
    leaf default.invalid default.invalid
    nginx_head
    make_keys
    build_domains
    echo "}" >>"$DIR/nginx.conf"
    cache_put

    build_test_zone >/dev/null
    sign_zone "$DIR/zones/bogus.test.zone" bogus.test. \
        "$(cat "$DIR/keys/bogus.ksk")" "$(cat "$DIR/keys/bogus.zsk")"
    write_nsd_conf
    write_unbound_conf
    write_env

    nsd-checkconf "$DIR/nsd.conf" || die "nsd.conf invalid"
    unbound-checkconf "$DIR/unbound.conf" >/dev/null || die "unbound.conf invalid"
    nginx -t -q -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/nginx-error.log" ||
        die "nginx.conf invalid"

    trap 'note "up failed, stopping what was started"; cmd_down' ERR
    nsd -c "$DIR/nsd.conf"
    wait_ready nsd "$DIR/nsd.log" || false
    unbound -c "$DIR/unbound.conf"
    wait_ready unbound "$DIR/unbound.log" || false
    nginx -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/nginx-error.log"
    wait_ready nginx "$DIR/nginx-error.log" || false
    setsid "$PY" "$HERE/hangserver.py" --pidfile "$DIR/hangserver.pid" \
        --log "$DIR/hangserver.log" \
        "$HANG_ADDR:$HTTPS_PORT:hang" \
        "$HANGTLS_ADDR:$HTTPS_PORT:tlshang:$DIR/certs/mta-sts.hangtls.test.crt:$DIR/certs/mta-sts.hangtls.test.key" \
        </dev/null >>"$DIR/hangserver.log" 2>&1 &
    HANG_PID=$!
    wait_ready hangserver "$DIR/hangserver.log" || false
    setsid "$PY" "$SMTP_SERVER" --pidfile "$DIR/smtpserver.pid" --log "$DIR/smtp.log" \
        "${SMTP_LISTENERS[@]}" </dev/null >>"$DIR/smtpserver.out" 2>&1 &
    SMTP_PID=$!
    wait_ready smtpserver "$DIR/smtpserver.out" || false
    trap - ERR
    echo "world up in $DIR (resolver $RES_ADDR:$DNS_PORT, https $HTTPS_ADDR:$HTTPS_PORT); env: $DIR/env"
}

nsd_serial() {
    drill -p "$DNS_PORT" test. "@$AUTH_ADDR" SOA 2>/dev/null |
        awk '$1 !~ /^;/ && $4 == "SOA" { print $7; exit }'
}

unbound_ctl() { unbound-control -c "$DIR/unbound.conf" "$@"; }

cmd_flush() {
    local name="${1:-}"
    pid_alive "$DIR/unbound.pid" unbound >/dev/null || die "unbound is not running in $DIR"
    if [ -n "$name" ]; then
        unbound_ctl flush_zone "$name" >/dev/null
        unbound_ctl flush_bogus >/dev/null
        unbound_ctl flush_negative >/dev/null
    else
        unbound_ctl flush_zone . >/dev/null
        unbound_ctl flush_bogus >/dev/null
        unbound_ctl flush_negative >/dev/null
        unbound_ctl flush_infra all >/dev/null
    fi
}

cmd_set_policy() {
    local domain="$1" id="$2" policy="$3" serial i
    domain="${domain%.}"
    domain="$(echo "$domain" | tr '[:upper:]' '[:lower:]')"
    pid_alive "$DIR/nsd.pid" nsd >/dev/null || die "nsd is not running in $DIR"
    [ -e "$DIR/txt/$domain" ] || [ -d "$DIR/www/mta-sts.$domain" ] ||
        die "$domain is not a domain of the test. zone with a policy host"
    case "$id" in
        -) ;;
        *) [[ "$id" =~ ^[A-Za-z0-9]{1,32}$ ]] || note "warning: id '$id' is not a valid RFC 8461 id" ;;
    esac
    # body first, so the new id never points at the old body
    if [ "$policy" != - ]; then
        [ -r "$policy" ] || die "cannot read $policy"
        local dst
        dst="$DIR/www/mta-sts.$domain/.well-known/mta-sts.txt"
        mkdir -p "${dst%/*}"
        cp "$policy" "$dst.tmp"
        mv "$dst.tmp" "$dst"
    fi
    if [ "$id" = - ]; then
        rm -f "$DIR/txt/$domain"
    else
        printf '"v=STSv1; id=%s;"\n' "$id" >"$DIR/txt/$domain"
    fi
    serial=$(( $(cat "$DIR/state/serial") + 1 ))
    echo "$serial" >"$DIR/state/serial"
    build_test_zone >/dev/null
    nsd-control -c "$DIR/nsd.conf" reload test. >/dev/null
    for ((i = 0; i < 50; i++)); do
        [ "$(nsd_serial)" = "$serial" ] && break
        if [ $((i % 10)) = 9 ]; then
            touch "$DIR/zones/test.zone.signed"
            nsd-control -c "$DIR/nsd.conf" reload test. >/dev/null
        fi
        sleep 0.1
    done
    [ "$(nsd_serial)" = "$serial" ] || die "nsd did not load serial $serial"
    if pid_alive "$DIR/unbound.pid" unbound >/dev/null; then
        cmd_flush "$domain"
    fi
}

# ---- can a network namespace run here? ----------------------------------------
# The suites run in network namespaces of their own (ip netns add, then a
# re-exec under ip netns exec). Where that cannot work, e.g. in a chroot whose
# / is not a mount point (ip netns exec: '"mount --make-rslave /" failed:
# Invalid argument'), they bail out with this line instead of failing later
# without a test plan.
cmd_netns_check() {
    local ns="mts-check-$$" err why=""
    if ! command -v ip >/dev/null 2>&1; then
        why="ip (iproute2) is not installed"
    elif ! err=$(ip netns add "$ns" 2>&1); then
        why="ip netns add $ns: ${err:-failed}"
    else
        err=$(ip netns exec "$ns" ip link set lo up 2>&1) || why="ip netns exec $ns: ${err:-failed}"
        ip netns del "$ns" >/dev/null 2>&1
    fi
    [ -z "$why" ] && return 0
    why=$(printf '%s' "$why" | tr -s '\n' ' ')
    echo "cannot run in a network namespace: $why (hint: is / a mount point? ip netns exec needs" \
        "one: in a chroot, bind-mount its directory onto itself before chroot; /run and /sys" \
        "must be mounted as well)"
    return 1
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

[ $# -ge 1 ] || usage
cmd="$1"; shift
case "$cmd" in
    packages) echo "$PACKAGES"; exit 0 ;;
    netns-check) [ $# -eq 0 ] || usage; cmd_netns_check; exit ;;
    up|down|env|status|flush|set-policy) ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac
[ $# -ge 1 ] || usage
DIR="${1%/}"; shift
[ -n "$DIR" ] || die "DIR must not be /"
case "$DIR" in /*) ;; *) DIR="$(pwd)/$DIR" ;; esac

case "$cmd" in
    up) [ $# -eq 0 ] || usage; cmd_up ;;
    down)
        [ $# -eq 0 ] || usage
        [ -d "$DIR" ] || die "no such directory: $DIR"
        cmd_down ;;
    env)
        [ -r "$DIR/env" ] || die "no $DIR/env (is the world up?)"
        cat "$DIR/env" ;;
    status) cmd_status ;;
    flush) [ $# -le 1 ] || usage; cmd_flush "${1:-}" ;;
    set-policy) [ $# -eq 3 ] || usage; cmd_set_policy "$1" "$2" "$3" ;;
esac
