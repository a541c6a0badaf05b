-- two_messages_one_connection: nothing of one message leaks into the next
-- on the same connection: recipients' tags, forged-header counts, the
-- authenticated user.
--
-- config: main
-- log: TWO1: from=<alice@example\.org> auth=alice in scope
-- log: TWO2: from=<alice@example\.org> auth=alice in scope
-- log: TWO3: from=<mallory@example\.org> auth=- not in scope
-- no-log: TWO3: rcpt
dofile(os.getenv("MT_LIB"))

local conn = T.connect()

T.mail(conn, "TWO1", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test",
              "message 1: enforce.test")
T.expect_rcpt(conn, "<bob@notxt.test>", SMFIR_CONTINUE, "smtp", "mx1.notxt.test",
              "message 1: notxt.test")
T.header(conn, T.HDR, "domain=enforce.test; forged")
T.eom(conn, "message 1: end of message")
local tags = T.tags(conn)
T.ok(#tags == 2 and T.tag_for(tags, "enforce.test") and T.tag_for(tags, "notxt.test"),
     "message 1: tags for enforce.test and notxt.test", T.tags_text(tags))
T.ok(mt.eom_check(conn, MT_HDRDELETE, T.HDR, 1), "message 1: forged tag removed")

T.mail(conn, "TWO2", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@testing.test>", SMFIR_CONTINUE, "smtp", "mx1.testing.test",
              "message 2: testing.test")
T.header(conn, "Subject", "second")
T.eom(conn, "message 2: end of message")
tags = T.tags(conn)
T.ok(#tags == 1 and T.tag_for(tags, "testing.test") ~= nil,
     "message 2: only its own tag (testing.test)", T.tags_text(tags))
T.expect_no_tag(tags, "enforce.test")
T.expect_no_tag(tags, "notxt.test")
T.ok(not mt.eom_check(conn, MT_HDRDELETE), "message 2: no removal left over from message 1")

-- 3: the same connection, now without SMTP AUTH for this message: out of
-- scope, even for a domain that would be refused.
T.mail(conn, "TWO3", "<mallory@example.org>")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_CONTINUE, "smtp", "mx1.mxmismatch.test",
              "message 3 (not authenticated): mxmismatch.test passes")
T.eom(conn, "message 3: end of message")
tags = T.tags(conn)
T.ok(#tags == 0, "message 3: no tag (the authentication of message 2 did not leak)",
     T.tags_text(tags))
T.done(conn)
