-- tests/lua/memory_guard.lua — calls that cannot fit in memory fail at once,
-- before they allocate or train, naming the call, the size asked for, the
-- estimate and the memory available (issue 10, defect 1: an MLP of widths
-- 16384 × 4, within its declared bounds, ran into the OOM killer at 15.5 GB;
-- `t:sample(2^40)` said only "not enough memory"). CTest runs it with
-- WB_MEMORY_LIMIT=2G, so the verdicts do not depend on the machine's memory
-- and nothing large is ever allocated; a small run must still pass.
local wb = require "wb"

local failures = 0
local function refused(what, needles, fn, ...)
  local t0 = os.time()
  local ok, err = pcall(fn, ...)
  local slow = os.difftime(os.time(), t0) > 5
  if ok then
    print("FAIL " .. what .. " was accepted")
    failures = failures + 1
    return
  end
  for _, s in ipairs(needles) do
    if not err:find(s, 1, true) then
      print(("FAIL %s: the message lacks '%s': %s"):format(what, s, err))
      failures = failures + 1
      return
    end
  end
  if slow then
    print("FAIL " .. what .. ": refused, but only after seconds of work")
    failures = failures + 1
    return
  end
  print("ok   " .. what .. ": " .. err:match("[^\n]*"))
end

local data = wb.data.gmm2d{ preset = "ring8" }
local t = wb.teacher{ data = data, steps = 5, batch = 16, quiet = true } -- a small run fits
local s = wb.distill{ teacher = t, data = data, steps = 2, batch = 16, quiet = true }
assert(t:sample(100):n() == 100 and s:sample(100):n() == 100, "small samples")

local n = 2 ^ 40
refused("t:sample(2^40)", { "Teacher:sample(1099511627776): needs ~8.0 TiB for the output alone", "available" },
        t.sample, t, n)
refused("student:sample(2^40)", { "Student:sample(1099511627776): needs ~8.0 TiB for the output alone" },
        s.sample, s, n)
refused("ds:sample(2^40)", { "Dataset:sample(1099511627776): needs ~8.0 TiB" }, data.sample, data, n)

local wide = { "mlp", widths = { 16384, 16384, 16384, 16384 } }
refused("wb.teacher, an MLP of 16384 × 4", { "wb.teacher: needs ~15.0 GiB", "805,962,800 parameters",
                                            "2.0 GiB available (WB_MEMORY_LIMIT=2G)" },
        wb.teacher, { data = data, net = wide, steps = 100, quiet = true })
refused("wb.teacher at batch 2^30", { "wb.teacher: needs ~", "for the host batches at batch 1073741824" },
        wb.teacher, { data = data, steps = 100, batch = 2 ^ 30, quiet = true })
refused("wb.distill, a generator of 16384 × 4", { "wb.distill: needs ~27.0 GiB", "the generator's 805,962,800 parameters" },
        wb.distill, { teacher = wb.teacher{ data = data, exact = true }, data = data, net = wide, init = "none",
                      steps = 100, ratio = { "classifier", net = { "mlp" } }, quiet = true })
-- activations measured by a dry run: an MLP of 2048 × 3 at batch 2^20 has
-- small weights (8.5 M parameters) but gigabytes of activations
refused("wb.teacher, activations at batch 2^20",
        { "wb.teacher: needs ~", "for one step's activations at batch 1048576", "2.0 GiB available" },
        wb.teacher, { data = data, net = { "mlp", widths = { 2048, 2048, 2048 } }, steps = 100, batch = 2 ^ 20,
                      quiet = true })

if failures > 0 then error(failures .. " memory guard check(s) failed") end
print("every call that cannot fit was refused at once")
