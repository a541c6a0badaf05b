-- idn_recipient: a UTF-8 recipient domain is looked up by its A-label
-- (lower case, NFC), and the tag shows the A-label. The world has no IDN
-- domain: xn--bcher-kva.test does not exist (absent).
--
-- config: main
-- log: IDN1: rcpt domain=xn--bcher-kva\.test status=absent .*action=tag
-- log: IDN1: rcpt .*unreadable address \(domain is not a valid internationalized name
-- world-log: unbound.log _mta-sts\.xn--bcher-kva\.test\. TXT IN
-- no-world-log: unbound.log bücher
dofile(os.getenv("MT_LIB"))

local conn = T.connect()
T.mail(conn, "IDN1", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@bücher.test>", SMFIR_CONTINUE, "smtp", nil, "bob@bücher.test (UTF-8)")
T.expect_rcpt(conn, "<carol@BÜCHER.test>", SMFIR_CONTINUE, "smtp", nil,
              "carol@BÜCHER.test (upper-case U-label)")
T.expect_rcpt(conn, "<dave@bu\204\136cher.test>", SMFIR_CONTINUE, "smtp", nil,
              "dave@bücher.test with a combining diaeresis (NFD)")
T.expect_rcpt(conn, "<erin@xn--bcher-kva.test>", SMFIR_CONTINUE, "smtp", nil,
              "erin@xn--bcher-kva.test (the A-label itself)")
T.expect_rcpt(conn, "<frank@b\255cher.test>", SMFIR_REPLYCODE, "smtp", nil,
              "a domain that is not UTF-8: deferred as unreadable")
T.eom(conn)
local tags = T.tags(conn)
T.expect_tag(conn, tags, "xn--bcher-kva.test",
             "domain=xn--bcher-kva.test; status=absent; requirement=mta-sts; "
             .. "verdict=not-required; action=tag")
T.ok(#tags == 1, "one tag for the four spellings of one domain", T.tags_text(tags))
T.done(conn)
