#!/bin/bash
# e2e.sh — end-to-end harness for mtasts-milter: a real Postfix with the
# milter in smtpd_milters, submitting over TLS to a real receiving Postfix,
# all inside a private network namespace next to the test world
# (tests/world/world.sh: DNSSEC DNS + HTTPS policy hosts).
#
#   e2e.sh up DIR [--no-milter]   create the namespace, start the world, the
#                                 receiving MX and the submitting Postfix
#   e2e.sh down DIR               stop everything (by PID), delete the namespace
#   e2e.sh run DIR CMD...         run CMD inside the namespace
#   e2e.sh env DIR                print DIR/env (eval "$(e2e.sh env DIR)")
#   e2e.sh status DIR             which servers run
#   e2e.sh milter-start DIR [CONFIG-LINE...]
#                                 start the milter in the namespace (extra
#                                 lines are appended to DIR/milter.conf)
#   e2e.sh milter-stop DIR        stop the milter by PID
#   e2e.sh milters DIR on|off     point the submitting Postfix's smtpd_milters
#                                 and non_smtpd_milters at the milter (on) or
#                                 at nothing (off); reloads Postfix
#   e2e.sh postconf DIR submit|mx NAME=VALUE...
#                                 change main.cf of an instance and reload it
#   e2e.sh flush DIR              postqueue -f on the submitting Postfix
#   e2e.sh packages               Debian packages the harness needs
#
# See tests/integration/README for addresses, files and examples.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRCDIR="$(cd "$HERE/../.." && pwd)"
BUILDDIR="${top_builddir:-$SRCDIR}"
WORLD_SH="$HERE/../world/world.sh"

NS="${MTS_E2E_NETNS:-mts-e2e}"
NSETC="/etc/netns/$NS"

SUBMIT_ADDR=127.0.40.1    # submitting Postfix: 25 inbound, 587 submission,
                          # 2525 trusted-network relay
MX_ADDR=127.0.30.1        # the world's MX hosts all resolve here
RES_ADDR=127.0.10.2       # the world's validating unbound
MILTER_INET_PORT=8891

# virtual mailbox owner on both instances (no system user is created)
MAIL_UID=65534
MAIL_GID=65534

PACKAGES="postfix sasl2-bin libsasl2-modules swaks iproute2 procps openssl"

die() { echo "e2e.sh: $*" >&2; exit 1; }
note() { echo "e2e.sh: $*" >&2; }

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

nsexec() { ip netns exec "$NS" "$@"; }
ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$NS"; }

# running PID: exists and is not a zombie
running() {
    local st
    st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    st="${st##*) }"
    case "${st%% *}" in
        Z|X|x|"") return 1 ;;
    esac
    return 0
}

# pid_of PIDFILE COMM -> pid if alive and named COMM
pid_of() {
    local f="$1" comm="$2" pid c
    [ -s "$f" ] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [ -n "$pid" ] || return 1
    running "$pid" || return 1
    c="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    case "$c" in "$comm"*) echo "$pid"; return 0 ;; esac
    return 1
}

# wait_gone SECONDS PID...: 0 when all are gone
wait_gone() {
    local t="$1" i p alive; shift
    for ((i = 0; i < t * 20; i++)); do
        alive=0
        for p in "$@"; do running "$p" && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.05
    done
    return 1
}

# kill_pids NAME PID...: TERM, wait 5 s, KILL, wait 2 s
kill_pids() {
    local name="$1"; shift
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    wait_gone 5 "$@" && return 0
    note "$name ($*) did not stop on SIGTERM, sending SIGKILL"
    kill -KILL "$@" 2>/dev/null || true
    wait_gone 2 "$@" || note "$name ($*) still alive"
}

abs_dir() {
    local d="${1%/}"
    [ -n "$d" ] || die "DIR must not be /"
    case "$d" in /*) ;; *) d="$(pwd)/$d" ;; esac
    echo "$d"
}

# ---- configuration ---------------------------------------------------------

pc() {  # pc INSTANCE NAME=VALUE... (postconf -e on DIR/INSTANCE)
    local inst="$1"; shift
    postconf -c "$DIR/$inst" -e "$@"
}

# common main.cf settings of both instances
base_main_cf() {  # INSTANCE MYHOSTNAME
    local inst="$1" host="$2"
    : >"$DIR/$inst/main.cf"
    pc "$inst" \
        "compatibility_level = 3.6" \
        "myhostname = $host" \
        "mydomain = e2e.test" \
        "myorigin = \$myhostname" \
        "mydestination =" \
        "queue_directory = $DIR/$inst-spool" \
        "data_directory = $DIR/$inst-data" \
        "mail_owner = postfix" \
        "setgid_group = postdrop" \
        "inet_protocols = ipv4" \
        "maillog_file = $DIR/$inst.log" \
        "maillog_file_prefixes = $DIR" \
        "alias_maps =" \
        "alias_database =" \
        "local_recipient_maps =" \
        "biff = no" \
        "readme_directory = no" \
        "smtputf8_enable = no" \
        "append_dot_mydomain = no" \
        "virtual_mailbox_base = $DIR/$3" \
        "virtual_uid_maps = static:$MAIL_UID" \
        "virtual_gid_maps = static:$MAIL_GID" \
        "virtual_minimum_uid = 100" \
        "virtual_mailbox_maps = texthash:$DIR/$inst/vmailbox" \
        "virtual_mailbox_limit = 0" \
        "message_size_limit = 10240000" \
        "queue_run_delay = 5s" \
        "minimal_backoff_time = 5s" \
        "maximal_backoff_time = 10s" \
        "delay_warning_time = 0" \
        "smtp_connect_timeout = 5s" \
        "smtp_helo_timeout = 10s" \
        "smtpd_banner = \$myhostname ESMTP e2e" \
        "smtp_tls_loglevel = 1" \
        "smtpd_tls_loglevel = 1" \
        "smtpd_tls_received_header = yes"
}

master_cf() {  # INSTANCE: Debian's master.cf, no chroot anywhere
    cp /usr/share/postfix/master.cf.dist "$DIR/$1/master.cf"
    postconf -c "$DIR/$1" -F '*/*/chroot = n'
}

# certificate issued by the world's CA: leaf NAME CN SAN...
leaf() {
    local name="$1" cn="$2" san="" s; shift 2
    for s in "$@"; do san="${san:+$san,}DNS:$s"; done
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$DIR/certs/$name.key" -out "$DIR/certs/$name.crt" -subj "/CN=$cn" \
        -CA "$DIR/world/ca.crt" -CAkey "$DIR/world/ca/ca.key" -days 365 -sha256 \
        -set_serial "0x$(openssl rand -hex 8)" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature" \
        -addext "extendedKeyUsage=serverAuth" \
        -addext "subjectAltName=$san" 2>/dev/null ||
        die "could not issue the certificate $name"
    chmod 0644 "$DIR/certs/$name.crt"
    chmod 0600 "$DIR/certs/$name.key"
}

# every MX host name of the world (unsigned zone sources)
world_mx_names() {
    awk '$2 == "MX" { h = $4; sub(/\.$/, "", h); print tolower(h) }' \
        "$DIR/world/zones/test.base" "$DIR"/world/zones/*.test.zone 2>/dev/null | sort -u
}

# every domain of the world that has an MX record
world_mx_domains() {
    awk '$2 == "MX" { d = $1; if (d == "@") { d = FILENAME; sub(/.*\//, "", d); sub(/\.zone$/, "", d) }
                      sub(/\.$/, "", d); print tolower(d) }' \
        "$DIR/world/zones/test.base" "$DIR"/world/zones/*.test.zone 2>/dev/null | sort -u
}

# vmailbox INSTANCE DOMAIN...: domain list and one mbox file per recipient
# domain (BASE/<domain>); virtual(8) does not allow regexp substitutions
vmailbox() {
    local inst="$1" dom; shift
    : >"$DIR/$inst/vdomains"
    : >"$DIR/$inst/vmailbox"
    for dom in "$@"; do
        printf '%s\tOK\n' "$dom" >>"$DIR/$inst/vdomains"
        printf '@%s\t%s\n' "$dom" "$dom" >>"$DIR/$inst/vmailbox"
    done
}

make_certs() {
    mkdir -p "$DIR/certs"
    chmod 0755 "$DIR/certs"
    # shellcheck disable=SC2046 # one SAN per MX name
    leaf mx mx1.enforce.test mx1.enforce.test '*.mx.enforce.test' $(world_mx_names)
    leaf submit submit.e2e.test submit.e2e.test
}

write_mx() {
    local d="$DIR/mx"
    mkdir -p "$d" "$DIR/mx-spool" "$DIR/mx-data" "$DIR/mail"
    chown postfix:postfix "$DIR/mx-data"
    chown "$MAIL_UID:$MAIL_GID" "$DIR/mail"
    base_main_cf mx mx1.enforce.test mail
    pc mx \
        "inet_interfaces = $MX_ADDR" \
        "mynetworks = $MX_ADDR/32" \
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination" \
        "virtual_mailbox_domains = texthash:$d/vdomains" \
        "smtpd_tls_security_level = may" \
        "smtpd_tls_cert_file = $DIR/certs/mx.crt" \
        "smtpd_tls_key_file = $DIR/certs/mx.key" \
        "smtpd_tls_protocols = >=TLSv1.2" \
        "default_transport = error:5.7.0 the e2e test MX sends nothing out" \
        "relay_transport = error:5.7.0 the e2e test MX sends nothing out" \
        "smtp_tls_security_level = none"
    # every domain of the world that has an MX record
    # shellcheck disable=SC2046
    vmailbox mx $(world_mx_domains)
    master_cf mx
}

write_submit() {
    local d="$DIR/submit" milter="$1"
    mkdir -p "$d" "$DIR/submit-spool" "$DIR/submit-data" "$DIR/mail-local" "$d/sasl"
    chown postfix:postfix "$DIR/submit-data"
    chown "$MAIL_UID:$MAIL_GID" "$DIR/mail-local"
    base_main_cf submit submit.e2e.test mail-local
    pc submit \
        "myorigin = e2e.test" \
        "inet_interfaces = $SUBMIT_ADDR" \
        "mynetworks = 127.0.0.0/8" \
        "virtual_mailbox_domains = texthash:$d/vdomains" \
        "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination" \
        "smtpd_tls_security_level = may" \
        "smtpd_tls_cert_file = $DIR/certs/submit.crt" \
        "smtpd_tls_key_file = $DIR/certs/submit.key" \
        "smtpd_tls_auth_only = no" \
        "smtpd_sasl_type = cyrus" \
        "smtpd_sasl_path = smtpd" \
        "cyrus_sasl_config_path = $d/sasl" \
        "smtpd_sasl_auth_enable = no" \
        "smtpd_sasl_authenticated_header = yes" \
        "smtp_bind_address = $SUBMIT_ADDR" \
        "smtp_host_lookup = dns" \
        "smtp_dns_support_level = dnssec" \
        "smtp_tls_security_level = may" \
        "smtp_tls_CAfile = $DIR/world/ca.crt" \
        "smtp_tls_policy_maps = texthash:$d/tls_policy" \
        "transport_maps = texthash:$d/transport" \
        "milter_protocol = 6" \
        "milter_default_action = tempfail" \
        "milter_connect_timeout = 10s" \
        "milter_command_timeout = 30s" \
        "milter_content_timeout = 60s" \
        "milter_mail_macros = i {auth_type} {auth_authen} {auth_ssf} {auth_author} {mail_addr} {mail_host} {mail_mailer}" \
        "milter_rcpt_macros = i {rcpt_addr} {rcpt_host} {rcpt_mailer}" \
        "smtpd_milters = $milter" \
        "non_smtpd_milters = $milter"
    vmailbox submit e2e.test
    # "a transport backed by an MTA-STS policy map": enforce.test is delivered
    # only over TLS verified against the world's CA, to its policy's MX names
    cat >"$d/tls_policy" <<'EOF'
# smtp_tls_policy_maps of the submitting Postfix (texthash: no postmap)
enforce.test    secure match=mx1.enforce.test:.mx.enforce.test
EOF
    cat >"$d/transport" <<'EOF'
# transport_maps of the submitting Postfix (texthash: no postmap); empty:
# everything goes through the default "smtp" transport. Examples:
#   enforce.test    mtasts:            # the MTA-STS-only clone of smtp
#   enforce.test    smtp:[127.0.30.1]  # a relay: the route does not enforce
EOF
    master_cf submit
    # port 25: inbound mail for e2e.test only (no AUTH, no relaying)
    postconf -c "$d" -P \
        "smtp/inet/smtpd_relay_restrictions=reject_unauth_destination" \
        "smtp/inet/smtpd_sasl_auth_enable=no"
    cat >>"$d/master.cf" <<EOF
# ---- added by tests/integration/e2e.sh ----
# 587: submission, SASL (alice@e2e.test / secret) required to relay
submission inet n       -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
# 2525: relaying without AUTH for clients in mynetworks (127.0.0.0/8)
2525      inet  n       -       n       -       -       smtpd
  -o syslog_name=postfix/trusted
  -o smtpd_sasl_auth_enable=no
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o milter_macro_daemon_name=ORIGINATING
# a clone of smtp for transport_maps experiments ({rcpt_mailer} = mtasts)
mtasts    unix  -       -       n       -       -       smtp
  -o syslog_name=postfix/mtasts
EOF
    cat >"$d/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $DIR/sasldb2
mech_list: PLAIN LOGIN
EOF
    chmod 0644 "$d/sasl/smtpd.conf"
    rm -f "$DIR/sasldb2"
    echo secret | saslpasswd2 -c -p -f "$DIR/sasldb2" -u e2e.test alice ||
        die "saslpasswd2 failed"
    chgrp postfix "$DIR/sasldb2"
    chmod 0640 "$DIR/sasldb2"
}

milter_conn_postfix() {
    case "${MTS_E2E_MILTER_SOCKET:-unix}" in
        inet) echo "inet:$SUBMIT_ADDR:$MILTER_INET_PORT" ;;
        *) echo "unix:$DIR/milter.sock" ;;
    esac
}
milter_conn_libmilter() {
    case "${MTS_E2E_MILTER_SOCKET:-unix}" in
        inet) echo "inet:$MILTER_INET_PORT@$SUBMIT_ADDR" ;;
        *) echo "unix:$DIR/milter.sock" ;;
    esac
}

write_milter_conf() {
    {
        echo "# mtasts-milter configuration for the e2e harness (tests/integration/e2e.sh)"
        echo "# -- from the test world ($DIR/world/mtasts-milter.conf) --"
        grep -v '^#' "$DIR/world/mtasts-milter.conf"
        echo "# -- milter options for the e2e tests (defined by the milter; edit here) --"
        echo "# MTS_E2E_MILTER_OPTIONS_BEGIN"
        echo "# The submitting Postfix delivers enforce.test through its default"
        echo "# transport smtp with an smtp_tls_policy_maps entry (secure, match="
        echo "# the policy's MX names): a test that treats that route as"
        echo "# MTA-STS-enforcing passes 'enforcing_transports = smtp' to"
        echo "# milter-start. The smtp clone 'mtasts' (master.cf) can be selected"
        echo "# per domain in DIR/submit/transport (then {rcpt_mailer} = mtasts)."
        echo "# MTS_E2E_MILTER_OPTIONS_END"
        echo "# -- lines given to e2e.sh milter-start follow --"
    } >"$DIR/milter.conf.base"
}

write_env() {
    cat >"$DIR/env" <<EOF
# generated by tests/integration/e2e.sh; eval "\$(e2e.sh env DIR)"
MTS_E2E_DIR='$DIR'
MTS_E2E_NETNS='$NS'
MTS_E2E_SUBMIT_ADDR='$SUBMIT_ADDR'
MTS_E2E_MX_ADDR='$MX_ADDR'
MTS_E2E_SUBMIT_CONF='$DIR/submit'
MTS_E2E_MX_CONF='$DIR/mx'
MTS_E2E_SUBMIT_LOG='$DIR/submit.log'
MTS_E2E_MX_LOG='$DIR/mx.log'
MTS_E2E_MAIL='$DIR/mail'
MTS_E2E_LOCAL_MAIL='$DIR/mail-local'
MTS_E2E_MILTER_CONF='$DIR/milter.conf'
MTS_E2E_MILTER_LOG='$DIR/milter.log'
MTS_E2E_MILTER_POSTFIX='$(milter_conn_postfix)'
MTS_E2E_MILTER_SOCKET='$(milter_conn_libmilter)'
MTS_E2E_WORLD='$DIR/world'
MTS_E2E_CA_FILE='$DIR/world/ca.crt'
MTS_E2E_SCRIPT='$HERE/e2e.sh'
export MTS_E2E_DIR MTS_E2E_NETNS MTS_E2E_SUBMIT_ADDR MTS_E2E_MX_ADDR MTS_E2E_SUBMIT_CONF
export MTS_E2E_MX_CONF MTS_E2E_SUBMIT_LOG MTS_E2E_MX_LOG MTS_E2E_MAIL MTS_E2E_LOCAL_MAIL
export MTS_E2E_MILTER_CONF MTS_E2E_MILTER_LOG MTS_E2E_MILTER_POSTFIX MTS_E2E_MILTER_SOCKET
export MTS_E2E_WORLD MTS_E2E_CA_FILE MTS_E2E_SCRIPT
EOF
    cat "$DIR/world/env" >>"$DIR/env"
}

# ---- Postfix instances -----------------------------------------------------

master_pid() {  # INSTANCE
    pid_of "$DIR/$1-spool/pid/master.pid" master
}

postfix_start() {  # INSTANCE
    local inst="$1" out i
    if ! out="$(nsexec postfix -c "$DIR/$inst" check 2>&1)"; then
        printf '%s\n' "$out" >&2
        return 1
    fi
    [ -z "$out" ] || printf '%s\n' "$out" | sed "s/^/e2e.sh: postfix check ($inst): /" >&2
    if ! nsexec postfix -c "$DIR/$inst" start >"$DIR/$inst.start.log" 2>&1; then
        note "postfix ($inst) did not start:"
        sed 's/^/    /' "$DIR/$inst.start.log" >&2
        tail -n 20 "$DIR/$inst.log" >&2 2>/dev/null || true
        return 1
    fi
    return 0
}

# wait_smtp INSTANCE ADDR PORT: until something answers 220 there (10 s)
wait_smtp() {
    local inst="$1" addr="$2" port="$3" i banner
    for ((i = 0; i < 100; i++)); do
        banner="$(nsexec timeout 2 bash -c "exec 3<>/dev/tcp/$addr/$port && head -n1 <&3 && printf 'QUIT\r\n' >&3" 2>/dev/null || true)"
        case "$banner" in 220*) return 0 ;; esac
        sleep 0.1
    done
    note "postfix ($inst) does not answer on $addr:$port within 10 s; last lines of $DIR/$inst.log:"
    tail -n 20 "$DIR/$inst.log" >&2 2>/dev/null || true
    return 1
}

postfix_stop() {  # INSTANCE
    local inst="$1" pid kids
    pid="$(master_pid "$inst")" || return 0
    kids="$(pgrep -P "$pid" 2>/dev/null || true)"
    if ns_exists; then
        nsexec postfix -c "$DIR/$inst" stop >/dev/null 2>&1 || true
    fi
    # shellcheck disable=SC2086 # list of pids
    if ! wait_gone 10 "$pid" $kids; then
        # shellcheck disable=SC2086
        kill_pids "postfix ($inst)" "$pid" $kids
    fi
}

postfix_reload() {  # INSTANCE
    master_pid "$1" >/dev/null || die "postfix ($1) is not running"
    nsexec postfix -c "$DIR/$1" reload >/dev/null 2>&1 || die "postfix ($1) reload failed"
}

# ---- milter ----------------------------------------------------------------

MILTER_BIN="${MTS_E2E_MILTER:-$BUILDDIR/milter/mtasts-milter}"

# milter_pid: pid of the running milter (its command line names the binary
# recorded at start: mtasts-milter, or MTS_E2E_MILTER such as fakemilter.py)
milter_pid() {
    local pid bin
    [ -s "$DIR/milter.pid" ] && [ -s "$DIR/milter.bin" ] || return 1
    pid="$(tr -dc '0-9' <"$DIR/milter.pid")"
    bin="$(cat "$DIR/milter.bin")"
    [ -n "$pid" ] && running "$pid" || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$bin" || return 1
    echo "$pid"
}

cmd_milter_start() {
    local pid sock i conn
    ns_exists || die "namespace $NS does not exist (run: $0 up $DIR)"
    if pid="$(milter_pid)"; then
        die "the milter already runs (pid $pid); run: $0 milter-stop $DIR"
    fi
    [ -x "$MILTER_BIN" ] || die "no milter binary at $MILTER_BIN (build it, or set MTS_E2E_MILTER)"
    {
        cat "$DIR/milter.conf.base"
        for i in "$@"; do printf '%s\n' "$i"; done
    } >"$DIR/milter.conf"
    conn="$(milter_conn_libmilter)"
    sock="$DIR/milter.sock"
    rm -f "$sock"
    : >>"$DIR/milter.log"
    echo "=== $(date '+%F %T') milter-start" >>"$DIR/milter.log"
    # setsid: own session; stdout/stderr to the log; pid from $!
    # shellcheck disable=SC2086 # MTS_E2E_MILTER_ARGS: extra words
    ip netns exec "$NS" setsid "$MILTER_BIN" -f -c "$DIR/milter.conf" -p "$conn" \
        ${MTS_E2E_MILTER_ARGS:-} </dev/null >>"$DIR/milter.log" 2>&1 &
    pid=$!
    echo "$pid" >"$DIR/milter.pid"
    echo "$MILTER_BIN" >"$DIR/milter.bin"
    # ip netns exec execs the command: $! is the milter itself
    for ((i = 0; i < 100; i++)); do
        if ! running "$pid"; then
            note "the milter exited at once; last lines of $DIR/milter.log:"
            tail -n 20 "$DIR/milter.log" >&2
            rm -f "$DIR/milter.pid"
            return 1
        fi
        case "$conn" in
            unix:*) [ -S "$sock" ] && break ;;
            inet:*) nsexec ss -Hlnt 2>/dev/null | awk '{print $4}' |
                        grep -qx "$SUBMIT_ADDR:$MILTER_INET_PORT" && break ;;
        esac
        sleep 0.1
    done
    if [ "$i" -ge 100 ]; then
        note "the milter (pid $pid) did not open $conn within 10 s; last lines of $DIR/milter.log:"
        tail -n 20 "$DIR/milter.log" >&2
        cmd_milter_stop
        return 1
    fi
    # Postfix's smtpd/cleanup run as user postfix: they need write access to
    # the socket, whatever umask the milter had
    [ -S "$sock" ] && chmod 0666 "$sock"
    echo "milter up (pid $pid, $conn, log $DIR/milter.log)"
}

cmd_milter_stop() {
    local pid
    if pid="$(milter_pid)"; then
        kill_pids milter "$pid"
    fi
    rm -f "$DIR/milter.pid" "$DIR/milter.bin"
}

cmd_milters() {
    local conn
    case "${1:-}" in
        on) conn="$(milter_conn_postfix)" ;;
        off) conn="" ;;
        *) usage ;;
    esac
    pc submit "smtpd_milters = $conn" "non_smtpd_milters = $conn"
    if master_pid submit >/dev/null; then postfix_reload submit; fi
}

# ---- up / down ---------------------------------------------------------------

cmd_up() {
    local milter="" i
    milter="$(milter_conn_postfix)"
    for i in "$@"; do
        case "$i" in
            --no-milter) milter="" ;;
            *) usage ;;
        esac
    done
    [ "$(id -u)" = 0 ] || die "must run as root (network namespace, ports 25/53/443)"
    local t
    for t in ip postfix postconf postqueue saslpasswd2 swaks openssl setsid pgrep; do
        command -v "$t" >/dev/null 2>&1 || die "missing tool $t (apt-get install $PACKAGES)"
    done
    [ -x "$WORLD_SH" ] || die "no $WORLD_SH"
    [ "${#DIR}" -le 70 ] || die "DIR path too long (max 70 chars: the world's nsd control socket)"
    if ns_exists; then
        die "network namespace $NS exists already (another e2e up?); run: $0 down DIR (or ip netns del $NS)"
    fi
    [ ! -e "$NSETC" ] || die "$NSETC exists already; run: $0 down DIR"
    if [ -e "$DIR" ] && [ ! -d "$DIR" ]; then die "$DIR is not a directory"; fi
    mkdir -p "$DIR"
    if [ -n "$(ls -A "$DIR")" ] && [ ! -e "$DIR/.mts-e2e" ]; then
        die "$DIR is not empty and is not an e2e directory; refusing to touch it"
    fi
    find "$DIR" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    touch "$DIR/.mts-e2e"
    # Postfix daemons (user postfix) and virtual delivery (uid 65534) need
    # to reach files in DIR
    chmod 0755 "$DIR"
    if ! setpriv --reuid=postfix --regid=postfix --clear-groups test -x "$DIR" 2>/dev/null; then
        die "user postfix cannot reach $DIR (a parent directory is not searchable by others)"
    fi

    trap 'note "up failed, cleaning up"; cmd_down >/dev/null 2>&1 || true' ERR

    # the namespace and its /etc overlays
    mkdir -p "$NSETC"
    printf '# e2e: the test world'"'"'s validating unbound\nnameserver %s\noptions edns0 trust-ad\n' \
        "$RES_ADDR" >"$NSETC/resolv.conf"
    printf '127.0.0.1\tlocalhost\n' >"$NSETC/hosts"
    ip netns add "$NS"
    nsexec ip link set lo up
    # Postfix wants its inet_interfaces on an interface (not just routable)
    nsexec ip addr add "$SUBMIT_ADDR/32" dev lo
    nsexec ip addr add "$MX_ADDR/32" dev lo

    # the world
    if ! nsexec "$WORLD_SH" up "$DIR/world" >"$DIR/world-up.log" 2>&1; then
        note "the test world did not come up:"
        sed 's/^/    /' "$DIR/world-up.log" >&2
        false
    fi
    # the namespace's libc resolver reaches the world (not needed for the
    # world itself, but for Postfix)
    if ! nsexec getent hosts mx1.enforce.test >/dev/null; then
        note "inside $NS, getent hosts mx1.enforce.test fails: /etc/resolv.conf -> $RES_ADDR not working"
        false
    fi

    make_certs
    write_mx
    write_submit "$milter"
    write_milter_conf
    write_env

    postfix_start mx
    wait_smtp mx "$MX_ADDR" 25
    postfix_start submit
    wait_smtp submit "$SUBMIT_ADDR" 25
    wait_smtp submit "$SUBMIT_ADDR" 587
    wait_smtp submit "$SUBMIT_ADDR" 2525
    trap - ERR
    echo "e2e up in $DIR (namespace $NS; submit $SUBMIT_ADDR:25/587/2525, MX $MX_ADDR:25, milter ${milter:-off}); env: $DIR/env"
}

cmd_down() {
    local pids p
    cmd_milter_stop
    postfix_stop submit
    postfix_stop mx
    if [ -d "$DIR/world" ]; then
        if ns_exists; then
            nsexec "$WORLD_SH" down "$DIR/world" || true
        else
            "$WORLD_SH" down "$DIR/world" || true
        fi
    fi
    if ns_exists; then
        # anything else still in the namespace (e.g. a swaks a test left)
        pids="$(ip netns pids "$NS" 2>/dev/null || true)"
        if [ -n "$pids" ]; then
            for p in $pids; do
                note "left in $NS: pid $p ($(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null || true))"
            done
            # shellcheck disable=SC2086
            kill_pids "processes left in $NS" $pids
        fi
        ip netns del "$NS"
    fi
    rm -rf "$NSETC"
    rmdir /etc/netns 2>/dev/null || true   # only when empty
    # verify
    local left=""
    for p in "$DIR/submit-spool/pid/master.pid" "$DIR/mx-spool/pid/master.pid"; do
        pid_of "$p" master >/dev/null && left="$left postfix($p)"
    done
    milter_pid >/dev/null && left="$left milter"
    if [ -d "$DIR/world" ] && "$WORLD_SH" status "$DIR/world" 2>/dev/null | grep -q ' running'; then
        left="$left world"
    fi
    [ -z "$left" ] || die "still running after down:$left"
    ns_exists && die "namespace $NS still exists"
    echo "e2e down ($DIR)"
}

cmd_status() {
    local rc=0 pid
    if ns_exists; then echo "namespace $NS exists"; else echo "namespace $NS absent"; rc=1; fi
    for i in mx submit; do
        if pid="$(master_pid "$i")"; then echo "postfix $i running (master pid $pid)"
        else echo "postfix $i not running"; rc=1; fi
    done
    if pid="$(milter_pid)"; then echo "milter running (pid $pid)"
    else echo "milter not running"; fi
    [ -d "$DIR/world" ] && { "$WORLD_SH" status "$DIR/world" || rc=1; }
    return "$rc"
}

# ---- main --------------------------------------------------------------------

[ $# -ge 1 ] || usage
cmd="$1"; shift
case "$cmd" in
    packages) echo "$PACKAGES"; exit 0 ;;
    up|down|run|env|status|milter-start|milter-stop|milters|postconf|flush) ;;
    *) usage ;;
esac
[ $# -ge 1 ] || usage
DIR="$(abs_dir "$1")"; shift

case "$cmd" in
    up) cmd_up "$@" ;;
    down)
        [ $# -eq 0 ] || usage
        [ -d "$DIR" ] || die "no such directory: $DIR"
        cmd_down ;;
    run)
        [ $# -ge 1 ] || usage
        ns_exists || die "namespace $NS does not exist (run: $0 up $DIR)"
        exec ip netns exec "$NS" "$@" ;;
    env) [ -r "$DIR/env" ] || die "no $DIR/env (is it up?)"; cat "$DIR/env" ;;
    status) cmd_status ;;
    milter-start) cmd_milter_start "$@" ;;
    milter-stop) [ $# -eq 0 ] || usage; cmd_milter_stop ;;
    milters) [ $# -eq 1 ] || usage; cmd_milters "$1" ;;
    postconf)
        [ $# -ge 2 ] || usage
        inst="$1"; shift
        case "$inst" in submit|mx) ;; *) usage ;; esac
        pc "$inst" "$@"
        if master_pid "$inst" >/dev/null; then postfix_reload "$inst"; fi ;;
    flush)
        nsexec postqueue -c "$DIR/submit" -f ;;
esac
