-- tests/resume/arms.lua — the runs the stop-and-resume tests stop and
-- continue (tests/resume/stop_and_resume.sh): a teacher and students of
-- every kind, each in its own run directory under `out`.
--   part=2d      MLP teacher on ring8; kl (score-based: fake score, two
--                fake updates a step) and dikl (score-free), both with the
--                default classifier on an MLP backbone (its own optimiser);
--                kl with fake-encoder (joint with the fake score) and R1,
--                dikl with R1
--   part=images  tiny UNet teacher with dropout (the net's own random
--                stream) on Fashion-MNIST 8×8; a kl student whose ratio
--                estimator reads the teacher's features (gan-head) and a
--                dijs student with a UNet-encoder classifier
--   part=long    one 2-D teacher and one long kl student (real signals land
--                mid-run)
--   part=wide    one teacher of `steps` steps with a ~1.1 MB checkpoint
--                (disk faults)
local wb = require("wb")
local args = wb.args{ out = "", part = "2d", checkpoint_every = 0, steps = 20 }
assert(args.out ~= "", "out=DIR is required")

local every = args.checkpoint_every
if args.part == "2d" then
  local data = wb.data.gmm2d{ preset = "ring8" }
  local t = wb.teacher{ data = data, steps = 40, batch = 64, log_every = 10, run = args.out .. "/teacher", quiet = true,
                        checkpoint_every = every }
  for _, dv in ipairs{ "kl", "dikl" } do
    wb.distill{ teacher = t, data = data, divergence = dv, steps = 30, batch = 64, log_every = 5, eval_samples = 100,
                run = args.out .. "/" .. dv, quiet = true, checkpoint_every = every, fake_updates = 2 }
  end
  -- the joint estimator (the fake net is the discriminator) with R1's own stream
  wb.distill{ teacher = t, data = data, divergence = "kl", steps = 30, batch = 64, log_every = 5, eval_samples = 100,
              ratio = { "fake-encoder", reduce = "signed" }, r1 = 0.5, run = args.out .. "/sida", quiet = true,
              checkpoint_every = every, fake_updates = 2 }
  -- R1 on a separate estimator (the ratio update)
  wb.distill{ teacher = t, data = data, divergence = "dikl", steps = 30, batch = 64, log_every = 5, eval_samples = 0,
              r1 = 0.5, run = args.out .. "/dikl_r1", quiet = true, checkpoint_every = every }
elseif args.part == "images" then
  local ok, data = pcall(wb.data.images, { kind = "fashion-mnist", resize_to = 8, max_images = 128 })
  if not ok then
    print("SKIP: Fashion-MNIST not installed (dataset-fashion-mnist): " .. tostring(data))
    return
  end
  local unet = { "unet", channels = 8, multipliers = { 1, 2 }, attn_resolutions = { 4 }, dropout = 0.2 }
  local t = wb.teacher{ data = data, net = unet, steps = 12, batch = 8, log_every = 2, run = args.out .. "/teacher",
                        quiet = true, checkpoint_every = every, grid = 4 }
  wb.distill{ teacher = t, data = data, divergence = "kl", steps = 10, batch = 8, log_every = 2, eval_samples = 0,
              ratio = { "gan-head", feature = "mid" }, run = args.out .. "/kl", quiet = true, checkpoint_every = every, grid = 4 }
  wb.distill{ teacher = t, data = data, divergence = "dijs", steps = 10, batch = 8, log_every = 2, eval_samples = 0,
              ratio = { "classifier", net = { "unet", channels = 8, multipliers = { 1, 2 }, attn_resolutions = { 4 },
                                              encoder_only = true, dropout = 0.1 } },
              run = args.out .. "/dijs", quiet = true, checkpoint_every = every, grid = 4 }
elseif args.part == "long" then
  local data = wb.data.gmm2d{ preset = "ring8" }
  local t = wb.teacher{ data = data, steps = 50, batch = 64, log_every = 10, run = args.out .. "/teacher", quiet = true }
  wb.distill{ teacher = t, data = data, divergence = "kl", steps = 1200, batch = 64, log_every = 20, eval_samples = 0,
              run = args.out .. "/kl", quiet = true, checkpoint_every = every }
elseif args.part == "wide" then -- a teacher whose checkpoint is ~1.1 MB (tests/resume/disk_faults.sh)
  local data = wb.data.gmm2d{ preset = "ring8" }
  wb.teacher{ data = data, net = { "mlp", widths = { 256, 256 } }, steps = args.steps, batch = 32, log_every = 5,
              run = args.out .. "/teacher", quiet = true, checkpoint_every = every }
else
  error("part = " .. args.part .. ": want 2d, images, long or wide")
end
print("arms done: " .. args.part)
