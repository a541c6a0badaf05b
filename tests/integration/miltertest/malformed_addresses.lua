-- malformed_addresses: odd and broken RCPT TO arguments get a sensible
-- answer (an unreadable address is deferred: the rules' "unknown" action),
-- and the milter keeps answering afterwards.
--
-- config: main
-- log: MAL1: rcpt <broken@: unreadable address \(unbalanced angle brackets\): defer
-- log: MAL1: rcpt <"bob@enforce\.test>: unreadable address \(unterminated quoted local part\): defer
-- log: MAL1: rcpt domain=mxmismatch\.test .*action=reject
-- log: MAL1: .*rcpt domain=testing\.test .*action=tag
-- log: MAL1: rcpt <bob@a+\.a+.*: unreadable address \(domain is [0-9]+ characters long, over the limit of 253\): defer
-- no-log: MAL1: rcpt domain=127\.0\.0\.1
-- no-log: MAL1: rcpt domain=relay
-- no-log: MAL1: rcpt domain=[^ ]*\.test\.[ ]
dofile(os.getenv("MT_LIB"))

local conn = T.connect()
T.mail(conn, "MAL1", "<alice@example.org>", "alice")
local SMTP = "smtp"

T.expect_rcpt(conn, "<broken@", SMFIR_REPLYCODE, SMTP, nil, "<broken@ (unbalanced): deferred")
T.expect_rcpt(conn, "<>", SMFIR_CONTINUE, SMTP, nil, "<> (null path): passes")
T.expect_rcpt(conn, "<@relay.example:bob@enforce.test>", SMFIR_CONTINUE, SMTP, nil,
              "<@relay.example:bob@enforce.test> (source route): enforce.test")
T.expect_rcpt(conn, "<@a.example,@b.example:bob@mxmismatch.test>", SMFIR_REPLYCODE, SMTP, nil,
              "<@a.example,@b.example:bob@mxmismatch.test>: the mailbox's domain is judged")
T.expect_rcpt(conn, "<\"a@b\"@testing.test>", SMFIR_CONTINUE, SMTP, nil,
              "<\"a@b\"@testing.test> (quoted local part): testing.test")
T.expect_rcpt(conn, "<\"bob@enforce.test>", SMFIR_REPLYCODE, SMTP, nil,
              "<\"bob@enforce.test> (unterminated quote): deferred")
T.expect_rcpt(conn, "<bob@[127.0.0.1]>", SMFIR_CONTINUE, SMTP, nil,
              "<bob@[127.0.0.1]> (address literal: no policy domain): passes")
T.expect_rcpt(conn, "<postmaster>", SMFIR_CONTINUE, SMTP, nil,
              "<postmaster> (no domain): passes")
T.expect_rcpt(conn, "<bob@enforce.test.>", SMFIR_CONTINUE, SMTP, nil,
              "<bob@enforce.test.> (trailing dot): enforce.test")
T.expect_rcpt(conn, "<bob@mxmismatch.test.>", SMFIR_REPLYCODE, SMTP, nil,
              "<bob@mxmismatch.test.> (trailing dot): judged as mxmismatch.test")
T.expect_rcpt(conn, "<bob@>", SMFIR_REPLYCODE, SMTP, nil, "<bob@> (empty domain): deferred")
T.expect_rcpt(conn, "<bob@enforce..test>", SMFIR_REPLYCODE, SMTP, nil,
              "<bob@enforce..test> (empty label): deferred")
T.expect_rcpt(conn, "<bob@enf\r\norce.test>", SMFIR_REPLYCODE, SMTP, nil,
              "<bob@enf CR LF orce.test> (control characters): deferred")

-- Long input. miltertest cannot send an argument of 1024 bytes or more
-- (mt.rcptto: "Input overflow"); oversized_address_raw.py sends 2000.
local long_local = "<" .. string.rep("x", 1000) .. "@enforce.test>"
T.expect_rcpt(conn, long_local, SMFIR_CONTINUE, SMTP, nil,
              string.format("a %d-byte address (1000-byte local part): enforce.test", #long_local))
local long_domain = "<bob@" .. string.rep(string.rep("a", 60) .. ".", 16) .. "test>"
T.expect_rcpt(conn, long_domain, SMFIR_REPLYCODE, SMTP, nil,
              string.format("a %d-byte domain: deferred", #long_domain - 6))
local okcall, err = pcall(mt.rcptto, conn, "<" .. string.rep("y", 2000) .. "@enforce.test>")
if okcall then
    local got = mt.getreply(conn)
    T.ok(got == SMFIR_REPLYCODE or got == SMFIR_CONTINUE,
         "a 2014-byte address: answered", "got " .. T.reply_name(got))
else
    T.diag("miltertest refuses a 2014-byte address: " .. tostring(err))
end

-- Still answering, and the message goes through with the right tags.
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, SMTP, "mx1.enforce.test",
              "a normal recipient afterwards still works")
T.eom(conn)
local tags = T.tags(conn)
T.ok(#tags == 2 and T.tag_for(tags, "enforce.test") and T.tag_for(tags, "testing.test"),
     "tags only for enforce.test and testing.test", T.tags_text(tags))
T.done(conn)
