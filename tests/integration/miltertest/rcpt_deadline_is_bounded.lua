-- rcpt_deadline_is_bounded: a RCPT TO never waits longer than
-- rcpt_deadline_ms (500 ms here): a lookup still running is "unknown" and
-- the recipient is deferred; the lookup goes on and fills the cache, so a
-- later recipient of that domain gets its real status.
--
-- config: deadline (rcpt_deadline_ms = 500ms)
-- (The log gives the time the lookup itself had: the deadline less what the
-- RCPT spent before the lookup began, which a loaded ASan build can make 499.)
-- log: DDL1: rcpt domain=hang\.test status=unknown .*action=defer .*did not finish within (4[0-9][0-9]|500) ms
-- log: DDL2: rcpt domain=hang\.test status=failed .*action=tag
dofile(os.getenv("MT_LIB"))

local conn = T.connect()
T.mail(conn, "DDL1", "<alice@example.org>", "alice")
local t0 = os.time()
T.expect_rcpt(conn, "<bob@hang.test>", SMFIR_REPLYCODE, "smtp", nil,
              "hang.test, lookup not done by the deadline: deferred")
T.ok(os.time() - t0 <= 2, "answered within the deadline (<= 2 s by the clock)",
     (os.time() - t0) .. " s")
T.eom(conn)
T.ok(T.tag_for(T.tags(conn), "hang.test") == nil, "no tag for the deferred hang.test")

-- fetch_connect_timeout_ms = 1s: by now the lookup has ended (failed).
mt.sleep(1.5)
T.mail(conn, "DDL2", "<alice@example.org>", "alice")
T.expect_rcpt(conn, "<bob@hang.test>", SMFIR_CONTINUE, "smtp", nil,
              "hang.test later: failed (from the cache), passes")
T.eom(conn, "later: end of message")
local tags = T.tags(conn)
T.expect_tag(conn, tags, "hang.test",
             "domain=hang.test; status=failed; id=20240101000000; requirement=mta-sts; "
             .. "verdict=not-required; action=tag")
T.done(conn)
