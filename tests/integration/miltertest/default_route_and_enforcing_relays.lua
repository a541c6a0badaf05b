-- default_route_and_enforcing_relays: a relay named in enforcing_relays
-- enforces (brackets and port ignored); without route macros the
-- configured default_route (a non-enforcing relay here) applies.
--
-- config: routes (default_route = relay:[smarthost.example]:587,
--                 enforcing_relays = secure-relay.example)
-- log: DRT1: rcpt domain=enforce\.test .*action=defer .*route relay:\[smarthost\.example\]:587 does not
-- log: DRT1: rcpt domain=enforce\.test .*action=defer .*route relay:\[secure-relay\.example\.evil\]:587 does not
-- log: DRT1: rcpt domain=enforce\.test .*verdict=pass action=tag
dofile(os.getenv("MT_LIB"))

local conn = T.connect()
T.mail(conn, "DRT1", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<a@enforce.test>", SMFIR_REPLYCODE, nil, nil,
              "enforce.test without route macros: default_route is a plain relay: deferred")
T.expect_rcpt(conn, "<b@enforce.test>", SMFIR_CONTINUE, "relay", "[secure-relay.example]:587",
              "enforce.test via [secure-relay.example]:587")
T.expect_rcpt(conn, "<c@enforce.test>", SMFIR_CONTINUE, "relay", "secure-relay.example",
              "enforce.test via secure-relay.example")
T.expect_rcpt(conn, "<d@enforce.test>", SMFIR_CONTINUE, "relay", "secure-relay.example:25",
              "enforce.test via secure-relay.example:25")
T.expect_rcpt(conn, "<e@enforce.test>", SMFIR_CONTINUE, "relay", "[SECURE-RELAY.example]",
              "enforce.test via [SECURE-RELAY.example] (case-insensitive)")
T.expect_rcpt(conn, "<f@enforce.test>", SMFIR_REPLYCODE, "relay", "[secure-relay.example.evil]:587",
              "enforce.test via [secure-relay.example.evil]:587 (not the same host): deferred")
T.expect_rcpt(conn, "<g@enforce.test>", SMFIR_REPLYCODE, "relay", "[smarthost.example]:587",
              "enforce.test via [smarthost.example]:587: deferred")
T.expect_rcpt(conn, "<h@enforce.test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test",
              "enforce.test via transport smtp")
T.eom(conn)
T.ok(T.tag_for(T.tags(conn), "enforce.test") ~= nil, "enforce.test tagged")
T.done(conn)
