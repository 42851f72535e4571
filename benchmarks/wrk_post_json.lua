-- wrk script for the POST scenario: every request sends the same JSON body,
-- read once from the file named by WRK_BODY_FILE (bench.py writes it from
-- apps/payloads.py). Setting wrk.method/body/headers at load time keeps wrk
-- on its fast path of one pre-built request; the report hook is shared with
-- the GET runs by loading wrk_report.lua from this script's directory.
local path = os.getenv("WRK_BODY_FILE")
if not path then
  error("WRK_BODY_FILE is not set")
end
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk_report.lua")
