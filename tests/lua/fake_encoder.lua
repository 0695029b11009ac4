-- tests/lua/fake_encoder.lua — the `fake-encoder` ratio estimator (SiDA's
-- discriminator, trained jointly with the fake score) through wb.distill:
-- it trains on 2-D data and logs the ratio accuracy; config.json says the
-- ratio update is not run; the score-free path and bad params are refused
-- with messages naming the estimator (and the divergence). Resume is
-- covered by tests/resume/arms.lua (part=2d).
local wb = require "wb"
local args = wb.args{ out = "" }
assert(args.out ~= "", "out=DIR is required")
local data = wb.data.gmm2d{ preset = "ring8" }
local teacher = wb.teacher{ data = data, steps = 40, batch = 64, quiet = true }
wb.distill{ teacher = teacher, data = data, divergence = "kl", steps = 40, batch = 64, log_every = 10, quiet = true,
            ratio = { "fake-encoder", reduce = "signed", adv_weight = 1 }, r1 = 0.1, run = args.out .. "/sida" }
local last
for line in io.lines(args.out .. "/sida/metrics.jsonl") do last = line end
local acc = tonumber(last:match('"ratio_acc": ([%d.]+)'))
local bce = tonumber(last:match('"ratio_loss": ([%d.]+)'))
-- the student starts as the teacher: after 40 steps the two are close, so
-- the accuracy is near chance; what is checked is that the joint update
-- logs its BCE and accuracy (a finite BCE, not the 0 of an update never run)
assert(acc and acc >= 0 and acc <= 1 and bce and bce > 0 and bce < 2, "ratio_acc / ratio_loss not logged: " .. tostring(last))
local cfg = io.open(args.out .. "/sida/config.json"):read("a")
assert(cfg:find('"ratio_training"', 1, true) and cfg:find("ratio_updates is ignored", 1, true), cfg)
assert(cfg:find('"r1":%s*0%.1'), "r1 not recorded: " .. cfg)
print("trained: ratio_acc " .. acc .. ", ratio_loss " .. bce)

local function refused(opts, ...)
  local ok, err = pcall(wb.distill, opts)
  assert(not ok, "accepted: " .. tostring(err))
  for _, want in ipairs{ ... } do assert(err:find(want, 1, true), "unclear message (want " .. want .. "): " .. err) end
  print("refused: " .. err)
end
local base = { teacher = teacher, data = data, steps = 2, batch = 8, quiet = true }
local function with(t) local o = {} for k, v in pairs(base) do o[k] = v end for k, v in pairs(t) do o[k] = v end return o end
refused(with{ divergence = "dikl", ratio = { "fake-encoder" } }, "fake-encoder", "dikl", "score-free")
refused(with{ divergence = "kl", ratio = { "fake-encoder", adv_weight = -1 } }, "adv_weight")
refused(with{ divergence = "kl", ratio = { "fake-encoder", feature = "enc99" } }, "fake-encoder", "enc99", "hidden")
print("fake_encoder ok")
