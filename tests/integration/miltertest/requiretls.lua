-- requiretls: MAIL FROM ... REQUIRETLS (RFC 8689), passed by the MTA as an
-- ESMTP parameter after the address: a recipient with an authenticated
-- path (MTA-STS enforce, MX matching, a route that enforces) is accepted
-- and tagged requiretls=pass; one without (testing, absent, unknown) is
-- refused at RCPT. "TLS-Required: No" changes no verdict; without
-- REQUIRETLS the tags say tls-required=no. Debian 12's Postfix 3.7 cannot
-- pass REQUIRETLS, so miltertest speaks for the MTA here.
--
-- config: main
-- log: RTLS1: rcpt domain=testing\.test status=testing .*verdict=fail action=reject .*REQUIRETLS: testing\.test has no authenticated path
-- log: RTLS1: rcpt domain=notxt\.test status=absent .*action=reject .*REQUIRETLS: notxt\.test has no authenticated path
-- log: RTLS1: rcpt domain=servfail\.test status=unknown .*verdict=unknown action=defer .*REQUIRETLS: the path to servfail\.test is not authenticated
-- log: RTLS1: rcpt domain=enforce\.test status=enforce requirement=mta-sts verdict=pass action=tag
-- log: RTLS1: TLS-Required: No ignored: the message has REQUIRETLS
-- log: RTLS2: TLS-Required: No: the verdicts given at RCPT stand
dofile(os.getenv("MT_LIB"))

-- mail_params(conn, qid, sender, auth, ...): MAIL FROM with ESMTP parameters.
local function mail_params(conn, qid, sender, auth, ...)
    if mt.macro(conn, SMFIC_MAIL, "i", qid, "{auth_authen}", auth) ~= nil then
        error("mt.macro failed")
    end
    if mt.mailfrom(conn, sender, ...) ~= nil then
        error("mt.mailfrom failed")
    end
    return mt.getreply(conn)
end

local SMTP = "smtp"
local conn = T.connect()
local r = mail_params(conn, "RTLS1", "<alice@example.org>", "alice", "SIZE=100", "REQUIRETLS")
T.ok(r == SMFIR_CONTINUE, "MAIL FROM ... REQUIRETLS (authenticated) -> CONTINUE",
     "got " .. T.reply_name(r))
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, SMTP, "mx1.enforce.test",
              "enforce.test (MTA-STS enforce, enforcing transport): accepted")
T.expect_rcpt(conn, "<bob@testing.test>", SMFIR_REPLYCODE, SMTP, "mx1.testing.test",
              "testing.test (no enforce policy): refused")
T.expect_rcpt(conn, "<bob@notxt.test>", SMFIR_REPLYCODE, SMTP, "mx1.notxt.test",
              "notxt.test (absent): refused")
T.expect_rcpt(conn, "<bob@servfail.test>", SMFIR_REPLYCODE, SMTP, "mx1.servfail.test",
              "servfail.test (status unknown): refused")
T.header(conn, "Subject", "requiretls")
T.header(conn, "TLS-Required", "No")
T.eom(conn)
local tags = T.tags(conn)
T.ok(#tags == 1, "one tag: enforce.test", T.tags_text(tags))
local t = T.tag_for(tags, "enforce.test") or ""
T.ok(t:find("; verdict=pass; action=tag; requiretls=pass$") ~= nil,
     "enforce.test tagged requiretls=pass (TLS-Required: No ignored)", t)

-- The next message of the connection: no REQUIRETLS, a TLS-Required: No header.
r = mail_params(conn, "RTLS2", "<alice@example.org>", "alice", "SIZE=100")
T.ok(r == SMFIR_CONTINUE, "MAIL FROM without REQUIRETLS -> CONTINUE", "got " .. T.reply_name(r))
T.expect_rcpt(conn, "<bob@testing.test>", SMFIR_CONTINUE, SMTP, "mx1.testing.test",
              "testing.test without REQUIRETLS: accepted")
T.header(conn, "TLS-Required", "No")
T.eom(conn)
tags = T.tags(conn)
t = T.tag_for(tags, "testing.test") or ""
T.ok(t:find("; verdict=not%-required; action=tag; tls%-required=no$") ~= nil and
     t:find("requiretls=") == nil, "testing.test tagged tls-required=no, no requiretls=", t)
T.done(conn)
