-- reload_keeps_connection_config: SIGHUP reloads the configuration; a
-- connection keeps the configuration it started with, new connections get
-- the new one; a configuration that does not load is refused and the
-- running one stays.
--
-- config: reload
-- log: configuration reloaded from
-- log: reload refused, the running configuration stays: .*no_such_option
-- log: RLD1: rcpt domain=mxmismatch\.test .*action=reject rule
-- log: RLD2: rcpt domain=mxmismatch\.test .*action=reject \(dry run: not applied\)
-- log: RLD3: rcpt domain=mxmismatch\.test .*action=reject \(dry run: not applied\)
-- log: RLD4: rcpt domain=mxmismatch\.test .*action=reject rule
dofile(os.getenv("MT_LIB"))

local conf, pid, logfile = os.getenv("MT_CONF"), os.getenv("MT_PID"), os.getenv("MT_LOG")

local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

local function write(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

local function count(plain)
    local s, n, i = slurp(logfile), 0, 1
    while true do
        local j = s:find(plain, i, true)
        if j == nil then
            return n
        end
        n, i = n + 1, j + 1
    end
end

-- hup(marker): SIGHUP, then wait (5 s at most) for one more marker line.
local function hup(marker)
    local before = count(marker)
    assert(os.execute("kill -HUP " .. pid))
    for _ = 1, 50 do
        if count(marker) > before then
            return true
        end
        mt.sleep(0.1)
    end
    return false
end

local original = slurp(conf)

local old = T.connect()
T.mail(old, "RLD1", "<alice@example.org>", "alice")

write(conf, original .. "dry_run = yes\n")
T.ok(hup("configuration reloaded from"), "SIGHUP with dry_run = yes added: reloaded")
T.expect_rcpt(old, "<bob@mxmismatch.test>", SMFIR_REPLYCODE, "smtp", nil,
              "the connection opened before: still refuses mxmismatch.test")
T.done(old)

local new = T.connect()
T.mail(new, "RLD2", "<alice@example.org>", "alice")
T.expect_rcpt(new, "<bob@mxmismatch.test>", SMFIR_CONTINUE, "smtp", nil,
              "a new connection: dry run, mxmismatch.test passes")
T.done(new)

write(conf, original .. "dry_run = yes\nno_such_option = 1\n")
T.ok(hup("reload refused"), "SIGHUP with an unknown option: refused")
local third = T.connect()
T.mail(third, "RLD3", "<alice@example.org>", "alice")
T.expect_rcpt(third, "<bob@mxmismatch.test>", SMFIR_CONTINUE, "smtp", nil,
              "after the refused reload: still dry run")
T.done(third)

write(conf, original)
T.ok(hup("configuration reloaded from"), "SIGHUP with the original file: reloaded")
local fourth = T.connect()
T.mail(fourth, "RLD4", "<alice@example.org>", "alice")
T.expect_rcpt(fourth, "<bob@mxmismatch.test>", SMFIR_REPLYCODE, "smtp", nil,
              "back to the original: mxmismatch.test refused")
T.done(fourth)
