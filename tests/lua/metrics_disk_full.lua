-- tests/lua/metrics_disk_full.lua — a metrics.jsonl that cannot be written
-- (disk full: the file is a link to /dev/full, which fails every write with
-- ENOSPC) stops the run at the first log line with an error naming the file
-- and the reason, instead of training on with a 0-byte log (issue 10,
-- defect 8). Args: dir = a fresh scratch folder.
local wb = require "wb"
local args = wb.args{ dir = "" }
assert(args.dir ~= "", "dir= is required")
local f = io.open("/dev/full", "w")
if not f then
  print("SKIP: no /dev/full on this system")
  return
end
f:close()
os.execute("rm -rf '" .. args.dir .. "' && mkdir -p '" .. args.dir .. "/t' && ln -s /dev/full '" .. args.dir ..
           "/t/metrics.jsonl'")
local data = wb.data.gmm2d{ preset = "ring8" }
local ok, err = pcall(wb.teacher, { data = data, steps = 20, batch = 8, log_every = 5, quiet = true,
                                    run = args.dir .. "/t", grid = 0 })
print(ok and "accepted" or err)
assert(not ok, "a teacher run whose metrics.jsonl cannot be written finished without an error")
assert(err:find("metrics.jsonl", 1, true) and err:find("No space left", 1, true),
       "the error names neither the file nor the reason: " .. err)
print("ok: " .. err:match("[^\n]*"))
