-- act_on_daemon_name: with act_on = daemon:ORIGINATING only sessions whose
-- {daemon_name} is ORIGINATING are judged, with or without SMTP AUTH;
-- others pass untouched, non-SMTP mail included.
--
-- config: custom (act_on = daemon:ORIGINATING, header_name =
--                 X-Transport-Security, defer_reply = 451 4.7.1,
--                 reject_reply = 554 5.7.1)
-- log: DMN1: from=<alice@example\.org> auth=- in scope
-- log: DMN2: from=<alice@example\.org> auth=alice not in scope
-- log: DMN3: from=<alice@example\.org> auth=- not in scope
-- log: DMN4: from=<alice@example\.org> auth=- not in scope
dofile(os.getenv("MT_LIB"))

local conn = T.connect("client.example", "192.0.2.10", "ORIGINATING")
T.mail(conn, "DMN1", "<alice@example.org>")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_REPLYCODE, "smtp", nil,
              "daemon ORIGINATING, no AUTH: mxmismatch.test refused")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", nil,
              "daemon ORIGINATING, no AUTH: enforce.test")
T.eom(conn)
T.ok(mt.eom_check(conn, MT_HDRINSERT, "X-Transport-Security"), "daemon ORIGINATING: tagged")
T.done(conn)

conn = T.connect("client.example", "192.0.2.10", "smtpd-in")
T.mail(conn, "DMN2", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_CONTINUE, "smtp", nil,
              "daemon smtpd-in, authenticated: mxmismatch.test passes (not in act_on)")
T.eom(conn)
T.ok(not mt.eom_check(conn, MT_HDRINSERT), "daemon smtpd-in: no tag")
T.done(conn)

conn = T.connect("client.example", "192.0.2.10")
T.mail(conn, "DMN3", "<alice@example.org>")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_CONTINUE, "smtp", nil,
              "no {daemon_name}: mxmismatch.test passes")
T.done(conn)

conn = T.connect("localhost", "unspec")
T.mail(conn, "DMN4", "alice@example.org")
T.expect_rcpt(conn, "bob@mxmismatch.test", SMFIR_CONTINUE, nil, nil,
              "non-SMTP mail (non-smtpd not in act_on): mxmismatch.test passes")
T.eom(conn)
T.ok(not mt.eom_check(conn, MT_QUARANTINE) and not mt.eom_check(conn, MT_HDRINSERT),
     "non-SMTP mail: neither held nor tagged")
T.done(conn)
