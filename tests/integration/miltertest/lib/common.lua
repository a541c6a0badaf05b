-- common.lua - helpers shared by the miltertest scenarios (not a scenario).
--
-- A scenario loads it with
--     dofile(os.getenv("MT_LIB"))
-- and prints one line per check, "ok - ..." or "not ok - ...", which
-- tests/integration/test_miltertest.sh numbers into TAP. Environment:
--     MT_SOCKET  the milter's unix socket (path, without "unix:")
--     MT_LIB     this file
-- A Lua error (or miltertest's own, e.g. a lost connection) ends the script
-- with a non-zero exit status, which the runner reports as a failure.

T = {}

T.HDR = "MTA-STS-Status"
T.failed = 0

local names = {}
names[SMFIR_CONTINUE] = "CONTINUE"
names[SMFIR_ACCEPT] = "ACCEPT"
names[SMFIR_REJECT] = "REJECT"
names[SMFIR_TEMPFAIL] = "TEMPFAIL"
names[SMFIR_DISCARD] = "DISCARD"
names[SMFIR_REPLYCODE] = "REPLYCODE"

function T.reply_name(r)
    if r == nil then
        return "nil"
    end
    return names[r] or string.format("'%s' (%d)", string.char(r), r)
end

-- ok(cond, description[, diagnostic]): one check.
function T.ok(cond, desc, diag)
    if cond then
        print("ok - " .. desc)
    else
        T.failed = T.failed + 1
        print("not ok - " .. desc)
        if diag ~= nil then
            for line in tostring(diag):gmatch("[^\n]+") do
                print("#   " .. line)
            end
        end
    end
    return cond
end

function T.diag(msg)
    print("# " .. msg)
end

-- A miltertest call returns nil on success, or an error string.
local function must(what, err)
    if err ~= nil then
        error(what .. ": " .. tostring(err))
    end
end

-- connect([host, ip[, daemon]]): a new milter connection. ip "unspec"
-- presents a connection of unknown protocol family (no socket address at
-- all). daemon: the {daemon_name} connect macro (Postfix sends it).
function T.connect(host, ip, daemon)
    local sock = os.getenv("MT_SOCKET")
    if sock == nil or sock == "" then
        error("MT_SOCKET is not set")
    end
    local conn = mt.connect("unix:" .. sock)
    if conn == nil then
        error("cannot connect to unix:" .. sock)
    end
    if daemon ~= nil then
        must("mt.macro", mt.macro(conn, SMFIC_CONNECT, "{daemon_name}", daemon))
    end
    must("mt.conninfo", mt.conninfo(conn, host or "client.example", ip or "192.0.2.10"))
    if mt.getreply(conn) ~= SMFIR_CONTINUE then
        error("connect answered " .. T.reply_name(mt.getreply(conn)))
    end
    return conn
end

-- mail(conn, qid, sender[, auth]): MAIL FROM with the macros an MTA sends:
-- the queue id i and, for an authenticated session, {auth_authen}.
function T.mail(conn, qid, sender, auth)
    if auth ~= nil then
        must("mt.macro", mt.macro(conn, SMFIC_MAIL, "i", qid, "{auth_authen}", auth))
    else
        must("mt.macro", mt.macro(conn, SMFIC_MAIL, "i", qid))
    end
    must("mt.mailfrom", mt.mailfrom(conn, sender))
    return mt.getreply(conn)
end

-- rcpt(conn, addr[, mailer, host]): RCPT TO with the route macros. With no
-- mailer and no host, the RCPT macros are replaced by a set without
-- {rcpt_mailer} and {rcpt_host} (the MTA did not say the route).
-- ({rcpt_addr} is cut to 200 bytes: miltertest's macro buffer is 1 KiB.)
function T.rcpt(conn, addr, mailer, host)
    local args = { "{rcpt_addr}", addr:sub(1, 200) }
    if mailer ~= nil then
        table.insert(args, "{rcpt_mailer}")
        table.insert(args, mailer)
    end
    if host ~= nil then
        table.insert(args, "{rcpt_host}")
        table.insert(args, host)
    end
    must("mt.macro", mt.macro(conn, SMFIC_RCPT, table.unpack(args)))
    must("mt.rcptto", mt.rcptto(conn, addr))
    return mt.getreply(conn)
end

-- expect_rcpt(conn, addr, want, mailer, host[, label]): one check on the
-- reply to RCPT TO. want: SMFIR_CONTINUE or SMFIR_REPLYCODE (a refusal
-- with our own reply text: miltertest shows a 4xx and a 5xx alike).
function T.expect_rcpt(conn, addr, want, mailer, host, label)
    local got = T.rcpt(conn, addr, mailer, host)
    local route = ""
    if mailer ~= nil or host ~= nil then
        route = string.format(" via %s:%s", mailer or "", host or "")
    end
    return T.ok(got == want,
                string.format("%s%s -> %s", label or addr, route, T.reply_name(want)),
                "got " .. T.reply_name(got))
end

function T.header(conn, name, value)
    must("mt.header", mt.header(conn, name, value))
end

-- eom(conn): end of message; checks that the milter lets it through.
function T.eom(conn, label)
    must("mt.eom", mt.eom(conn))
    local got = mt.getreply(conn)
    T.ok(got == SMFIR_CONTINUE, (label or "end of message") .. " -> CONTINUE",
         "got " .. T.reply_name(got))
    return got
end

-- tags(conn): the values of every tag header inserted at end of message.
function T.tags(conn)
    local t = {}
    local i = 0
    while true do
        local v = mt.getheader(conn, T.HDR, i)
        if v == nil then
            break
        end
        table.insert(t, v)
        i = i + 1
    end
    return t
end

function T.tags_text(tags)
    if #tags == 0 then
        return "no tag header"
    end
    return "tags:\n" .. table.concat(tags, "\n")
end

-- tag_for(tags, domain): the tag value for domain, or nil.
function T.tag_for(tags, domain)
    local prefix = "domain=" .. domain .. ";"
    for _, v in ipairs(tags) do
        if v:sub(1, #prefix) == prefix then
            return v
        end
    end
    return nil
end

-- expect_tag(conn, tags, domain, value): the exact tag of domain.
function T.expect_tag(conn, tags, domain, value)
    T.ok(mt.eom_check(conn, MT_HDRINSERT, T.HDR, value),
         string.format("tag for %s is \"%s\"", domain, value), T.tags_text(tags))
end

function T.expect_no_tag(tags, domain)
    T.ok(T.tag_for(tags, domain) == nil, "no tag for " .. domain, T.tags_text(tags))
end

function T.done(conn)
    if conn ~= nil then
        mt.disconnect(conn)
    end
end
