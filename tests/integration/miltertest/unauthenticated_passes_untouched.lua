-- unauthenticated_passes_untouched: with act_on = authenticated, non-smtpd
-- an SMTP session without SMTP AUTH is not judged: every recipient passes
-- and no tag is added. (A forged tag is still removed: nobody upstream may
-- forge one.)
--
-- config: main
-- log: UNA1: from=<mallory@example\.org> auth=- not in scope \(passes untouched\)
-- log: UNA2: from=<mallory@example\.org> auth=- not in scope \(passes untouched\)
-- no-log: UNA[12]: rcpt
dofile(os.getenv("MT_LIB"))

local conn = T.connect("mx.sender.example", "198.51.100.7")

T.mail(conn, "UNA1", "<mallory@example.org>")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_CONTINUE, "smtp", "mx1.mxmismatch.test",
              "mxmismatch.test passes")
T.expect_rcpt(conn, "<bob@servfail.test>", SMFIR_CONTINUE, "smtp", "mx1.servfail.test",
              "servfail.test passes")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "relay", "[smarthost.example]:587",
              "enforce.test through a non-enforcing relay passes")
T.expect_rcpt(conn, "<broken@", SMFIR_CONTINUE, "smtp", nil, "an unreadable address passes")
T.header(conn, T.HDR, "domain=enforce.test; forged")
T.eom(conn)
T.ok(not mt.eom_check(conn, MT_HDRINSERT) and not mt.eom_check(conn, MT_HDRADD),
     "no header is added")
T.ok(not mt.eom_check(conn, MT_QUARANTINE), "the message is not held")
T.ok(mt.eom_check(conn, MT_HDRDELETE, T.HDR, 1), "a forged tag is still removed")

-- An empty {auth_authen} is no authentication either.
T.mail(conn, "UNA2", "<mallory@example.org>", "")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_CONTINUE, "smtp", "mx1.mxmismatch.test",
              "empty {auth_authen}: mxmismatch.test passes")
T.eom(conn)
T.ok(not mt.eom_check(conn, MT_HDRINSERT), "empty {auth_authen}: no header is added")
T.done(conn)
