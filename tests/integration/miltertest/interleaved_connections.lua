-- interleaved_connections: two connections open at once, their commands
-- interleaved (as two smtpd processes would): each message's tags, forged
-- header count and scope stay with its own connection.
--
-- config: main
-- log: ILV1: rcpt domain=enforce\.test .*action=tag
-- log: ILV2: rcpt domain=testing\.test .*action=tag
-- log: ILV1: removed 1 MTA-STS-Status
-- no-log: ILV2: removed
-- no-log: ILV3: rcpt
dofile(os.getenv("MT_LIB"))

local a = T.connect("a.example", "192.0.2.1")
local b = T.connect("b.example", "192.0.2.2")
local c = T.connect("c.example", "192.0.2.3")
T.mail(a, "ILV1", "<alice@example.org>", "alice")
T.mail(b, "ILV2", "<bob@example.org>", "bob")
T.mail(c, "ILV3", "<mallory@example.org>")
T.expect_rcpt(a, "<x@enforce.test>", SMFIR_CONTINUE, "smtp", nil, "A: enforce.test")
T.expect_rcpt(b, "<x@testing.test>", SMFIR_CONTINUE, "smtp", nil, "B: testing.test")
T.expect_rcpt(c, "<x@mxmismatch.test>", SMFIR_CONTINUE, "smtp", nil,
              "C (not authenticated): mxmismatch.test passes")
T.expect_rcpt(b, "<x@mxmismatch.test>", SMFIR_REPLYCODE, "smtp", nil, "B: mxmismatch.test refused")
T.expect_rcpt(a, "<x@notxt.test>", SMFIR_CONTINUE, "smtp", nil, "A: notxt.test")
T.header(a, T.HDR, "domain=enforce.test; forged")
T.header(b, "Subject", "B")
T.header(c, "Subject", "C")

T.eom(b, "B: end of message")
local tags = T.tags(b)
T.ok(#tags == 1 and T.tag_for(tags, "testing.test") ~= nil, "B: only B's tag (testing.test)",
     T.tags_text(tags))
T.ok(not mt.eom_check(b, MT_HDRDELETE), "B: A's forged header is not B's")

T.eom(c, "C: end of message")
T.ok(not mt.eom_check(c, MT_HDRINSERT), "C: no tag (not in scope)")

T.eom(a, "A: end of message")
tags = T.tags(a)
T.ok(#tags == 2 and T.tag_for(tags, "enforce.test") ~= nil and T.tag_for(tags, "notxt.test") ~= nil,
     "A: only A's tags (enforce.test, notxt.test)", T.tags_text(tags))
T.ok(mt.eom_check(a, MT_HDRDELETE, T.HDR, 1), "A: its forged header is removed")
T.done(a)
T.done(b)
T.done(c)
