-- per_recipient_replies: in an authenticated session each recipient gets
-- its own answer at RCPT TO, and a refused one does not affect the others.
--
-- config: main
-- log: PRR1: rcpt domain=enforce\.test status=enforce requirement=mta-sts verdict=pass action=tag
-- log: PRR1: rcpt domain=mxmismatch\.test status=enforce requirement=mta-sts verdict=fail action=reject rule=default: .*none of its MX hosts
-- log: PRR1: rcpt domain=enforce\.test status=enforce .*verdict=fail action=defer .*the route relay:\[smarthost\.example\]:587 does not enforce it
-- log: PRR1: rcpt domain=servfail\.test status=unknown .*verdict=unknown action=defer .*SERVFAIL
-- log: PRR1: rcpt domain=timeout\.test status=unknown .*action=defer
-- log: PRR1: rcpt domain=testing\.test status=testing .*action=tag
-- log: PRR1: .*rcpt domain=notxt\.test status=absent .*action=tag
-- log: PRR1: .*rcpt domain=notfound\.test status=failed .*action=tag
-- log: PRR1: .*rcpt domain=hang\.test status=failed .*action=tag
-- (the tagged recipients of a message share log lines, " | " between them)
-- log: PRR1: rcpt domain=enforce\.test [^|]*action=tag [^|]*\| rcpt domain=testing\.test [^|]*\| rcpt domain=notxt\.test
dofile(os.getenv("MT_LIB"))

local conn = T.connect()
local r = T.mail(conn, "PRR1", "<alice@example.org>", "alice")
T.ok(r == SMFIR_CONTINUE, "MAIL FROM (authenticated) -> CONTINUE", "got " .. T.reply_name(r))

local SMTP, MX = "smtp", "mx1.enforce.test"
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, SMTP, MX,
              "enforce.test over an enforcing transport")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_REPLYCODE, SMTP, "mx1.mxmismatch.test",
              "mxmismatch.test (no MX matches the policy): refused")
T.expect_rcpt(conn, "<carol@testing.test>", SMFIR_CONTINUE, SMTP, "mx1.testing.test",
              "the recipient after a refused one: testing.test")
T.expect_rcpt(conn, "<dave@enforce.test>", SMFIR_REPLYCODE, "relay", "[smarthost.example]:587",
              "enforce.test through a relay that does not enforce: refused")
T.expect_rcpt(conn, "<bob@servfail.test>", SMFIR_REPLYCODE, SMTP, "mx1.servfail.test",
              "servfail.test (status unknown): refused")
T.expect_rcpt(conn, "<bob@notxt.test>", SMFIR_CONTINUE, SMTP, "mx1.notxt.test",
              "notxt.test (absent)")
T.expect_rcpt(conn, "<bob@notfound.test>", SMFIR_CONTINUE, SMTP, "mx1.notfound.test",
              "notfound.test (failed: HTTP 404)")
-- Lookups bounded by the short fetch and DNS timeouts, within rcpt_deadline_ms.
local t0 = os.time()
T.expect_rcpt(conn, "<bob@hang.test>", SMFIR_CONTINUE, SMTP, "mx1.hang.test",
              "hang.test (policy host never answers: failed)")
T.expect_rcpt(conn, "<bob@timeout.test>", SMFIR_REPLYCODE, SMTP, "mx1.timeout.test",
              "timeout.test (DNS never answers: unknown): refused")
T.ok(os.time() - t0 <= 8, "hang.test and timeout.test answered within the deadlines",
     (os.time() - t0) .. " s")
T.expect_rcpt(conn, "<erin@testing.test>", SMFIR_CONTINUE, SMTP, "mx1.testing.test",
              "the recipient after a deferred one: testing.test again")

T.header(conn, "Subject", "per-recipient replies")
T.eom(conn)
local tags = T.tags(conn)
T.ok(#tags == 5, "one tag per accepted recipient domain (5)", T.tags_text(tags))
T.expect_no_tag(tags, "mxmismatch.test")
T.expect_no_tag(tags, "servfail.test")
T.expect_no_tag(tags, "timeout.test")
T.done(conn)
