-- route_macros: for an enforce domain the route the MTA reports per
-- recipient ({rcpt_mailer}, {rcpt_host}) decides: an enforcing transport
-- passes, a relay that is not declared enforcing is deferred, and without
-- route macros the default_route (smtp, enforcing here) applies.
--
-- config: main (enforcing_transports = smtp, default_route not set: smtp)
-- log: RTE1: rcpt domain=enforce\.test .*verdict=fail action=defer .*route relay:\[smarthost\.example\]:587 does not
-- log: RTE1: rcpt domain=enforce\.test .*verdict=fail action=defer .*route lmtp:mx1\.enforce\.test does not
-- log: RTE1: rcpt domain=enforce\.test .*verdict=fail action=defer .*route :\[smarthost\.example\] does not
-- log: RTE1: .*rcpt domain=testing\.test .*verdict=not-required action=tag
-- log: RTE2: rcpt domain=enforce\.test .*verdict=pass action=tag
dofile(os.getenv("MT_LIB"))

local conn = T.connect()
T.mail(conn, "RTE1", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<a@enforce.test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test",
              "enforce.test, enforcing transport smtp")
T.expect_rcpt(conn, "<b@enforce.test>", SMFIR_CONTINUE, "SMTP", "mx1.enforce.test",
              "enforce.test, transport SMTP (case-insensitive)")
T.expect_rcpt(conn, "<c@enforce.test>", SMFIR_REPLYCODE, "relay", "[smarthost.example]:587",
              "enforce.test, smarthost relay: deferred")
T.expect_rcpt(conn, "<d@enforce.test>", SMFIR_REPLYCODE, "lmtp", "mx1.enforce.test",
              "enforce.test, another transport (lmtp): deferred")
T.expect_rcpt(conn, "<e@enforce.test>", SMFIR_REPLYCODE, nil, "[smarthost.example]",
              "enforce.test, a next hop without a transport: deferred")
T.expect_rcpt(conn, "<f@testing.test>", SMFIR_CONTINUE, "relay", "[smarthost.example]:587",
              "testing.test through the relay: nothing demanded")
T.expect_rcpt(conn, "<g@notxt.test>", SMFIR_CONTINUE, "relay", "[smarthost.example]:587",
              "notxt.test through the relay: nothing demanded")
T.eom(conn)
local tags = T.tags(conn)
T.expect_tag(conn, tags, "enforce.test",
             "domain=enforce.test; status=enforce; id=20240101T000000; requirement=mta-sts; "
             .. "verdict=pass; action=tag")
T.ok(#tags == 3, "three tags (enforce.test, testing.test, notxt.test)", T.tags_text(tags))

-- No route macros at all: default_route (smtp) applies.
T.mail(conn, "RTE2", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<h@enforce.test>", SMFIR_CONTINUE, nil, nil,
              "enforce.test without route macros (default_route smtp)")
T.eom(conn, "message 2: end of message")
T.ok(T.tag_for(T.tags(conn), "enforce.test") ~= nil, "message 2: enforce.test tagged")
T.done(conn)
