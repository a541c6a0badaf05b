-- client_gone_mid_lookup: the MTA gives up on a RCPT whose lookup is still
-- running (hangtls.test: the policy host completes TLS and never answers)
-- and closes the connection; the milter finishes the lookup, drops the
-- answer nobody reads, and goes on serving other connections.
--
-- config: main
-- log: GONE2: rcpt domain=enforce\.test .*action=tag
-- log: GONE1: rcpt domain=hangtls\.test status=failed
dofile(os.getenv("MT_LIB"))

local conn = T.connect()
T.mail(conn, "GONE1", "<alice@example.org>", "alice")
mt.set_timeout(1)
mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "smtp")
local err = mt.rcptto(conn, "<bob@hangtls.test>")
T.ok(err ~= nil, "hangtls.test: no answer within 1 s (the MTA gives up)",
     "answered " .. T.reply_name(mt.getreply(conn)))
mt.set_timeout(10)
mt.disconnect(conn)

-- Another connection is served at once, while that lookup still runs.
conn = T.connect()
T.mail(conn, "GONE2", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", nil,
              "a new connection meanwhile: enforce.test")
T.eom(conn, "a new connection meanwhile: end of message")
T.done(conn)

-- Let the abandoned lookup end (fetch_timeout_ms = 2s), then once more.
mt.sleep(2.5)
conn = T.connect()
T.mail(conn, "GONE3", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@hangtls.test>", SMFIR_CONTINUE, "smtp", nil,
              "afterwards: hangtls.test (failed, from the cache)")
T.eom(conn, "afterwards: end of message")
T.done(conn)
