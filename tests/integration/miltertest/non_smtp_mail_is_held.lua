-- non_smtp_mail_is_held: mail from sendmail(1)/pickup (a connection without
-- a socket address; act_on has non-smtpd) cannot be refused per recipient:
-- every recipient passes, the message is held (quarantined) with the first
-- reason, and the tags say "action=hold".
--
-- miltertest presents it with conninfo "unspec" (family unknown, no
-- address); Postfix's own form (127.0.0.1, port 0) cannot be sent with
-- miltertest: see non_smtp_port_zero_raw.py.
--
-- config: main
-- log: NSM1: from=<alice@example\.org> auth=- in scope
-- log: NSM1: rcpt domain=mxmismatch\.test .*action=reject
-- log: NSM1: held \(non-SMTP mail cannot be refused per recipient\): MTA-STS: mxmismatch\.test:
-- no-log: NSM2: held
dofile(os.getenv("MT_LIB"))

local conn = T.connect("localhost", "unspec")
T.mail(conn, "NSM1", "alice@example.org")
T.expect_rcpt(conn, "bob@enforce.test", SMFIR_CONTINUE, nil, nil, "enforce.test")
T.expect_rcpt(conn, "bob@mxmismatch.test", SMFIR_CONTINUE, nil, nil,
              "mxmismatch.test (would be rejected) is not refused")
T.expect_rcpt(conn, "bob@servfail.test", SMFIR_CONTINUE, nil, nil,
              "servfail.test (would be deferred) is not refused")
T.expect_rcpt(conn, "<broken@", SMFIR_CONTINUE, nil, nil,
              "an unreadable address is not refused")
T.header(conn, "Subject", "from cron")
T.eom(conn)
T.ok(mt.eom_check(conn, MT_QUARANTINE), "the message is held (quarantine)")
local reason = "MTA-STS: mxmismatch.test: mxmismatch.test requires MTA-STS (enforce) and none "
    .. "of its MX hosts (mx1.mxmismatch.test) matches its policy"
T.ok(mt.eom_check(conn, MT_QUARANTINE, reason),
     "the hold reason names the first refused domain and why", "want: " .. reason)
local tags = T.tags(conn)
T.expect_tag(conn, tags, "mxmismatch.test",
             "domain=mxmismatch.test; status=enforce; id=20240101000000; requirement=mta-sts; "
             .. "verdict=fail; action=hold")
T.expect_tag(conn, tags, "servfail.test",
             "domain=servfail.test; status=unknown; requirement=mta-sts; verdict=unknown; "
             .. "action=hold")
T.expect_tag(conn, tags, "enforce.test",
             "domain=enforce.test; status=enforce; id=20240101T000000; requirement=mta-sts; "
             .. "verdict=pass; action=tag")
T.ok(#tags == 3, "three tags", T.tags_text(tags))

-- The next message on the same connection has nothing to hold.
T.mail(conn, "NSM2", "alice@example.org")
T.expect_rcpt(conn, "bob@testing.test", SMFIR_CONTINUE, nil, nil, "message 2: testing.test")
T.eom(conn, "message 2: end of message")
T.ok(not mt.eom_check(conn, MT_QUARANTINE), "message 2: not held (no leak from message 1)")
tags = T.tags(conn)
T.ok(#tags == 1 and T.tag_for(tags, "testing.test") ~= nil, "message 2: only its own tag",
     T.tags_text(tags))
T.done(conn)

-- A TCP client with an address and a port is SMTP mail: out of scope
-- without SMTP AUTH.
conn = T.connect("localhost", "127.0.0.1")
T.mail(conn, "NSM3", "alice@example.org")
T.expect_rcpt(conn, "bob@mxmismatch.test", SMFIR_CONTINUE, "smtp", nil,
              "SMTP client 127.0.0.1 (port 12345), no AUTH: passes")
T.eom(conn, "SMTP client: end of message")
T.ok(not mt.eom_check(conn, MT_QUARANTINE) and not mt.eom_check(conn, MT_HDRINSERT),
     "SMTP client, no AUTH: neither held nor tagged")
T.done(conn)
