-- rules_apply: organization rules (first match wins) change the verdict per
-- authenticated user and recipient domain; the log names the rule.
--
-- config: rules
--   rule = auth=bob rcpt=mxmismatch.test require=none
--   rule = rcpt=servfail.test require=mta-sts unknown=tag
--   rule = rcpt=*.test auth=carol require=mta-sts fail=reject
-- log: RUL1: rcpt domain=mxmismatch\.test .*action=reject rule=default
-- log: RUL2: rcpt domain=mxmismatch\.test .*requirement=none verdict=not-required action=tag rule=[^ ]*:[0-9]+
-- log: RUL2: .*rcpt domain=servfail\.test status=unknown .*verdict=unknown action=tag rule=[^ ]*:[0-9]+
-- log: RUL3: rcpt domain=enforce\.test .*verdict=fail action=reject rule=[^ ]*:[0-9]+: .*route relay
dofile(os.getenv("MT_LIB"))

local conn = T.connect()

T.mail(conn, "RUL1", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<x@mxmismatch.test>", SMFIR_REPLYCODE, "smtp", nil,
              "alice: mxmismatch.test (no rule matches: default): refused")
T.eom(conn, "alice: end of message")

T.mail(conn, "RUL2", "<bob@example.org>", "bob")
T.expect_rcpt(conn, "<x@mxmismatch.test>", SMFIR_CONTINUE, "smtp", nil,
              "bob: mxmismatch.test (rule: require=none)")
T.expect_rcpt(conn, "<x@servfail.test>", SMFIR_CONTINUE, "smtp", nil,
              "bob: servfail.test (rule: unknown=tag)")
T.eom(conn, "bob: end of message")
local tags = T.tags(conn)
T.expect_tag(conn, tags, "mxmismatch.test",
             "domain=mxmismatch.test; status=enforce; id=20240101000000; requirement=none; "
             .. "verdict=not-required; action=tag")
T.expect_tag(conn, tags, "servfail.test",
             "domain=servfail.test; status=unknown; requirement=mta-sts; verdict=unknown; "
             .. "action=tag")

T.mail(conn, "RUL3", "<carol@example.org>", "carol")
T.expect_rcpt(conn, "<x@enforce.test>", SMFIR_REPLYCODE, "relay", "[smarthost.example]:587",
              "carol: enforce.test through a non-enforcing relay (rule: fail=reject): refused")
T.expect_rcpt(conn, "<y@enforce.test>", SMFIR_CONTINUE, "smtp", nil,
              "carol: enforce.test over smtp")
T.eom(conn, "carol: end of message")
T.done(conn)
