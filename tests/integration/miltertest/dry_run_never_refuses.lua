-- dry_run_never_refuses: with dry_run = yes every recipient passes, and the
-- tag says what would have been done ("dry-run=yes"); non-SMTP mail is not
-- held either.
--
-- config: dryrun
-- log: DRY1: rcpt domain=mxmismatch\.test status=enforce .*action=reject \(dry run: not applied\)
-- log: DRY1: rcpt domain=servfail\.test status=unknown .*action=defer \(dry run: not applied\)
-- log: DRY1: rcpt domain=enforce\.test .*action=defer \(dry run: not applied\)
-- log: DRY1: rcpt <broken@: unreadable address .*: tag
-- no-log: DRY2: held
dofile(os.getenv("MT_LIB"))

local conn = T.connect()
T.mail(conn, "DRY1", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@mxmismatch.test>", SMFIR_CONTINUE, "smtp", "mx1.mxmismatch.test",
              "mxmismatch.test (would be rejected) passes")
T.expect_rcpt(conn, "<bob@servfail.test>", SMFIR_CONTINUE, "smtp", "mx1.servfail.test",
              "servfail.test (would be deferred) passes")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "relay", "[smarthost.example]:587",
              "enforce.test through a non-enforcing relay (would be deferred) passes")
T.expect_rcpt(conn, "<broken@", SMFIR_CONTINUE, "smtp", nil,
              "an unreadable address (would be deferred) passes")
T.expect_rcpt(conn, "<bob@testing.test>", SMFIR_CONTINUE, "smtp", "mx1.testing.test",
              "testing.test passes")
T.eom(conn)
local tags = T.tags(conn)
T.expect_tag(conn, tags, "mxmismatch.test",
             "domain=mxmismatch.test; status=enforce; id=20240101000000; requirement=mta-sts; "
             .. "verdict=fail; action=reject; dry-run=yes")
T.expect_tag(conn, tags, "servfail.test",
             "domain=servfail.test; status=unknown; requirement=mta-sts; verdict=unknown; "
             .. "action=defer; dry-run=yes")
T.expect_tag(conn, tags, "enforce.test",
             "domain=enforce.test; status=enforce; id=20240101T000000; requirement=mta-sts; "
             .. "verdict=fail; action=defer; dry-run=yes")
T.expect_tag(conn, tags, "testing.test",
             "domain=testing.test; status=testing; id=20240101000000; requirement=mta-sts; "
             .. "verdict=not-required; action=tag")
T.ok(#tags == 4, "four tags", T.tags_text(tags))
T.done(conn)

-- Non-SMTP mail in dry run: tagged "hold", not held.
conn = T.connect("localhost", "unspec")
T.mail(conn, "DRY2", "alice@example.org")
T.expect_rcpt(conn, "bob@mxmismatch.test", SMFIR_CONTINUE, nil, nil,
              "non-SMTP: mxmismatch.test passes")
T.eom(conn, "non-SMTP: end of message")
T.ok(not mt.eom_check(conn, MT_QUARANTINE), "non-SMTP: the message is not held")
tags = T.tags(conn)
local t = T.tag_for(tags, "mxmismatch.test") or ""
T.ok(t:find("; dry%-run=yes$") ~= nil and t:find("action=hold", 1, true) ~= nil,
     "non-SMTP: the tag says action=hold and dry-run=yes", T.tags_text(tags))
T.done(conn)
