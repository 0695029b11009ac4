-- tests/lua/arms_toy.lua — a small experiment with arms for the wb.arms
-- tests (tests/arms/*.sh): a 2-D teacher as the shared setup (a run
-- directory, so workers load it), three students as arms a, b, c, and a
-- report (a table) built from their results. Every arm's run appends its
-- name to OUT/ran.txt, so a test counts which arms actually ran, in any
-- process; fail=NAME makes that arm raise an error after training.
-- mmd_label= is a report-only argument (report_args): the MMD column's
-- label, which `workbench table` may change without re-running an arm.
--
-- Run: build/workbench run tests/lua/arms_toy.lua out=DIR [fail=b] [--jobs 2 | --slurm "" | arm=a]
local wb = require "wb"

local args = wb.args{ out = "", fail = "", steps = 6, teacher_steps = 20, mmd_label = "mmd" }
assert(args.out ~= "", "arms_toy: out=DIR is required")
wb.deterministic(true)

local function append(path, line)
  local f = assert(io.open(path, "a"))
  f:write(line, "\n")
  f:close()
end

local results = wb.arms{
  name = "toy",
  out = args.out,
  report_args = { "mmd_label" },
  arms = { { name = "a", divergence = "kl" }, { name = "b", divergence = "rkl" }, { name = "c", divergence = "dijs" } },
  setup = function()
    wb.mkdir(args.out)
    local data = wb.data.gmm2d{ preset = "ring8" }
    append(args.out .. "/setup.txt", "setup")
    local teacher = wb.teacher{ data = data, steps = args.teacher_steps, batch = 64, log_every = 10, quiet = true,
                                run = args.out .. "/runs/teacher" }
    return { data = data, teacher = teacher }
  end,
  run = function(arm, s)
    local student = wb.distill{ teacher = s.teacher, data = s.data, divergence = arm.divergence, steps = args.steps,
                                batch = 64, log_every = math.max(1, args.steps // 3), eval_samples = 64, quiet = true,
                                run = args.out .. "/runs/" .. arm.name }
    append(args.out .. "/ran.txt", arm.name)
    if arm.name == args.fail then error("arms_toy: arm " .. arm.name .. " fails on purpose (fail=" .. args.fail .. ")") end
    local m = wb.evaluate(student, s.data, { n = 256, reference_n = 256 })
    return { method = arm.name, mmd = m.mmd, tv = m.tv, modes = m.modes, curve = student.log.mmd,
             samples = student:sample(4, { seed = 3 }):totable() }
  end,
}

local rows = {}
for _, r in ipairs(results) do
  rows[#rows + 1] = { method = r.result.method, mmd = r.result.mmd, tv = r.result.tv, modes = r.result.modes,
                      first = r.result.samples[1][1], points = #r.result.curve }
end
wb.mkdir(args.out)
local tab = wb.table(rows, { "method", "modes", "tv", { key = "mmd", label = args.mmd_label }, "first", "points" })
tab:print()
tab:write(args.out .. "/table", { "csv" })
print("arms_toy: report written")
