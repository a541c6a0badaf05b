-- custom_header_name: header_name renames the tag header; copies of that
-- name that come with the message are removed, and the default name is
-- then an ordinary header.
--
-- config: custom (header_name = X-Transport-Security, act_on =
--                 daemon:ORIGINATING)
-- log: HNM1: removed 2 X-Transport-Security header\(s\)
dofile(os.getenv("MT_LIB"))

local conn = T.connect("client.example", "192.0.2.10", "ORIGINATING")
T.mail(conn, "HNM1", "<alice@example.org>")
T.expect_rcpt(conn, "<bob@enforce.test>", SMFIR_CONTINUE, "smtp", nil, "enforce.test")
T.header(conn, "x-transport-security", "domain=enforce.test; forged")
T.header(conn, "MTA-STS-Status", "domain=enforce.test; someone else's")
T.header(conn, "X-Transport-Security", "domain=enforce.test; forged again")
T.eom(conn)
local want = "domain=enforce.test; status=enforce; id=20240101T000000; requirement=mta-sts; "
    .. "verdict=pass; action=tag"
T.ok(mt.eom_check(conn, MT_HDRINSERT, "X-Transport-Security", want, 0),
     "the tag is X-Transport-Security: " .. want)
T.ok(not mt.eom_check(conn, MT_HDRINSERT, "MTA-STS-Status"), "no MTA-STS-Status header added")
T.ok(mt.eom_check(conn, MT_HDRDELETE, "X-Transport-Security", 1)
     and mt.eom_check(conn, MT_HDRDELETE, "X-Transport-Security", 2),
     "both X-Transport-Security copies removed")
T.ok(not mt.eom_check(conn, MT_HDRDELETE, "MTA-STS-Status"), "MTA-STS-Status left alone")
T.done(conn)
