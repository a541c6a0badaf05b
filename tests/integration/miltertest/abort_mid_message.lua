-- abort_mid_message: an aborted message (SMTP RSET, or a client that goes
-- away after RCPT) leaves nothing behind for the next one.
--
-- config: main
-- log: ABT1: rcpt domain=enforce\.test
-- log: ABT3: rcpt domain=notxt\.test
-- no-log: ABT3: removed
-- no-log: ABT5: removed
dofile(os.getenv("MT_LIB"))

local conn = T.connect()

-- 1: recipients and a forged header, then abort before end of message.
T.mail(conn, "ABT1", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test",
              "message 1: enforce.test")
T.expect_rcpt(conn, "<bob@testing.test>", SMFIR_CONTINUE, "smtp", "mx1.testing.test",
              "message 1: testing.test")
T.header(conn, T.HDR, "domain=enforce.test; forged")
T.ok(mt.abort(conn) == nil, "message 1: aborted after the headers")

-- 2: abort right after MAIL FROM.
T.mail(conn, "ABT2", "<alice@example.org>", "alice")
T.ok(mt.abort(conn) == nil, "message 2: aborted after MAIL FROM")

-- 3: a complete message: only its own tag, no removal.
T.mail(conn, "ABT3", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@notxt.test>", SMFIR_CONTINUE, "smtp", "mx1.notxt.test",
              "message 3: notxt.test")
T.header(conn, "Subject", "after abort")
T.eom(conn, "message 3: end of message")
local tags = T.tags(conn)
T.ok(#tags == 1 and T.tag_for(tags, "notxt.test") ~= nil,
     "message 3: only its own tag (notxt.test)", T.tags_text(tags))
T.expect_no_tag(tags, "enforce.test")
T.expect_no_tag(tags, "testing.test")
T.ok(not mt.eom_check(conn, MT_HDRDELETE),
     "message 3: the aborted message's forged header is not counted")

-- 4: abort after a refused recipient, then 5: a clean message.
T.mail(conn, "ABT4", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_REPLYCODE, "smtp", "mx1.mxmismatch.test",
              "message 4: mxmismatch.test refused")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test",
              "message 4: enforce.test")
T.header(conn, T.HDR, "domain=enforce.test; forged")
T.header(conn, T.HDR, "domain=enforce.test; forged again")
T.ok(mt.abort(conn) == nil, "message 4: aborted")
T.mail(conn, "ABT5", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@testing.test>", SMFIR_CONTINUE, "smtp", "mx1.testing.test",
              "message 5: testing.test")
T.eom(conn, "message 5: end of message")
tags = T.tags(conn)
T.ok(#tags == 1 and T.tag_for(tags, "testing.test") ~= nil,
     "message 5: only its own tag (testing.test)", T.tags_text(tags))
T.ok(not mt.eom_check(conn, MT_HDRDELETE), "message 5: no removal left over")
T.done(conn)
