-- run.lua - runs one scenario (MT_SCENARIO) under miltertest so that a Lua
-- error is reported: the installed miltertest exits 1 without printing it.
-- Used by tests/integration/test_miltertest.sh; not a scenario.
local path = os.getenv("MT_SCENARIO")
local ok, err = xpcall(dofile, debug.traceback, path)
if not ok then
    print("# the scenario stopped: " .. tostring(err):gsub("\n", "\n# "))
    error("scenario " .. tostring(path) .. " stopped", 0)
end
