-- local_domains_skipped: a recipient in local_domains is never looked up:
-- it passes, gets no tag, and neither the milter's log nor the resolver's
-- shows a lookup for it.
--
-- config: local
-- log: LOC1: rcpt domain=enforce\.test .*action=tag
-- no-log: local\.test
-- no-world-log: unbound.log local\.test
dofile(os.getenv("MT_LIB"))

local conn = T.connect()
T.mail(conn, "LOC1", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@local.test>", SMFIR_CONTINUE, "local", nil, "bob@local.test")
T.expect_rcpt(conn, "<carol@LOCAL.Test>", SMFIR_CONTINUE, "local", nil,
              "carol@LOCAL.Test (another case)")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", "mx1.enforce.test",
              "bob@enforce.test (not local)")
T.eom(conn)
local tags = T.tags(conn)
T.expect_no_tag(tags, "local.test")
T.ok(#tags == 1 and T.tag_for(tags, "enforce.test") ~= nil, "only enforce.test is tagged",
     T.tags_text(tags))
T.done(conn)
