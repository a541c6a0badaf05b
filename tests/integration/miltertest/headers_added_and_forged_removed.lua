-- headers_added_and_forged_removed: at end of message one MTA-STS-Status
-- header per accepted recipient domain, with the exact documented value,
-- at the top of the header; every copy of the header that came with the
-- message is removed (any case of the name), and look-alikes are not.
--
-- config: main
-- log: HDR1: removed 1 MTA-STS-Status header\(s\) that came with the message
-- log: HDR2: removed 2 MTA-STS-Status header\(s\) that came with the message
-- log: HDR3: removed 1 MTA-STS-Status header\(s\) that came with the message
-- no-log: HDR4: removed
dofile(os.getenv("MT_LIB"))

local ENFORCE = "domain=enforce.test; status=enforce; id=20240101T000000; "
    .. "requirement=mta-sts; verdict=pass; action=tag"
local TESTING = "domain=testing.test; status=testing; id=20240101000000; "
    .. "requirement=mta-sts; verdict=not-required; action=tag"
local FORGED = "domain=mxmismatch.test; status=enforce; id=20240101000000; "
    .. "requirement=mta-sts; verdict=pass; action=tag"

local conn = T.connect()

-- 1: two domains accepted (one of them twice, in another case), one
-- refused, one forged tag.
T.mail(conn, "HDR1", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test")
T.expect_rcpt(conn, "<Carol@ENFORCE.Test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test")
T.expect_rcpt(conn, "<bob@testing.test>", SMFIR_CONTINUE, "smtp", "mx1.testing.test")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_REPLYCODE, "smtp", "mx1.mxmismatch.test")
T.header(conn, "From", "alice@example.org")
T.header(conn, T.HDR, FORGED)
T.header(conn, "Subject", "tags")
T.eom(conn, "message 1: end of message")
local tags = T.tags(conn)
T.expect_tag(conn, tags, "enforce.test", ENFORCE)
T.expect_tag(conn, tags, "testing.test", TESTING)
T.ok(#tags == 2, "message 1: exactly two tags (one per domain, the refused one without)",
     T.tags_text(tags))
T.expect_no_tag(tags, "mxmismatch.test")
T.ok(mt.eom_check(conn, MT_HDRINSERT, T.HDR, ENFORCE, 0)
     and mt.eom_check(conn, MT_HDRINSERT, T.HDR, TESTING, 0),
     "message 1: the tags are inserted at the top (index 0)")
T.ok(mt.eom_check(conn, MT_HDRDELETE, T.HDR, 1), "message 1: the forged tag is removed")
T.ok(not mt.eom_check(conn, MT_HDRDELETE, T.HDR, 2),
     "message 1: nothing else is removed")
T.ok(not mt.eom_check(conn, MT_HDRDELETE, "From") and not mt.eom_check(conn, MT_HDRDELETE, "Subject"),
     "message 1: other headers are left alone")

-- 2: two forged copies.
T.mail(conn, "HDR2", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@testing.test>", SMFIR_CONTINUE, "smtp", "mx1.testing.test")
T.header(conn, T.HDR, FORGED)
T.header(conn, "Subject", "two forged")
T.header(conn, T.HDR, "domain=testing.test; status=enforce")
T.eom(conn, "message 2: end of message")
T.ok(mt.eom_check(conn, MT_HDRDELETE, T.HDR, 1) and mt.eom_check(conn, MT_HDRDELETE, T.HDR, 2),
     "message 2: both forged copies are removed (indexes 1 and 2)")
T.ok(not mt.eom_check(conn, MT_HDRDELETE, T.HDR, 3), "message 2: no third removal")
tags = T.tags(conn)
T.ok(#tags == 1 and tags[1] == TESTING, "message 2: only its own tag", T.tags_text(tags))

-- 3: the name in another case, and look-alike names that are not ours.
T.mail(conn, "HDR3", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test")
T.header(conn, "X-MTA-STS-Status", "domain=enforce.test")
T.header(conn, "mta-sts-status", FORGED)
T.header(conn, "MTA-STS-Status-Old", "domain=enforce.test")
T.eom(conn, "message 3: end of message")
T.ok(mt.eom_check(conn, MT_HDRDELETE, T.HDR, 1),
     "message 3: a forged \"mta-sts-status\" (lower case) is removed")
T.ok(not mt.eom_check(conn, MT_HDRDELETE, T.HDR, 2)
     and not mt.eom_check(conn, MT_HDRDELETE, "X-MTA-STS-Status")
     and not mt.eom_check(conn, MT_HDRDELETE, "MTA-STS-Status-Old"),
     "message 3: X-MTA-STS-Status and MTA-STS-Status-Old are not removed")
T.expect_tag(conn, T.tags(conn), "enforce.test", ENFORCE)

-- 4: no forged header, nothing removed.
T.mail(conn, "HDR4", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test")
T.header(conn, "Subject", "clean")
T.eom(conn, "message 4: end of message")
T.ok(not mt.eom_check(conn, MT_HDRDELETE), "message 4: no header is removed")
T.ok(not mt.eom_check(conn, MT_HDRCHANGE), "message 4: no header is changed")
T.done(conn)
