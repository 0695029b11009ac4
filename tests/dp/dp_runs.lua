-- tests/dp/dp_runs.lua — the runs the data-parallel tests repeat on 1, 2
-- and 4 ranks (tests/dp/ranks_agree.sh): a teacher and students of each
-- kind, each in its own run directory under `out`, at a global batch that
-- every rank count divides.
--   part=2d      MLP teacher on ring8; kl (score-based: fake score) with
--                bin normalisation (weights that need the whole batch's
--                logits) and dikl (score-free), MLP classifier backbone
--   part=images  tiny UNet teacher with dropout on Fashion-MNIST 8×8, a kl
--                student with the gan-head on the teacher's features
--   part=long    a 2-D teacher and a long kl student (a rank is killed mid-run)
local wb = require("wb")
local args = wb.args{ out = "", part = "2d", reduction = "fast", shards = 4, steps = 20, checkpoint_every = 0 }
assert(args.out ~= "", "out=DIR is required")
local dp = { reduction = args.reduction, shards = args.shards, hash_every = 5 }
local function with(t)
  for k, v in pairs(dp) do t[k] = v end
  return t
end

if args.part == "2d" then
  local data = wb.data.gmm2d{ preset = "ring8" }
  local t = wb.teacher(with{ data = data, steps = 30, batch = 64, log_every = 10, run = args.out .. "/teacher",
                             quiet = true })
  wb.distill(with{ teacher = t, data = data, divergence = "kl", steps = args.steps, batch = 64, log_every = 5,
                   eval_samples = 100, normalize_bins = true, run = args.out .. "/kl", quiet = true })
  wb.distill(with{ teacher = t, data = data, divergence = "dikl", steps = args.steps, batch = 64, log_every = 5,
                   eval_samples = 0, run = args.out .. "/dikl", quiet = true, ratio_updates = 2 })
elseif args.part == "images" then
  local ok, data = pcall(wb.data.images, { kind = "fashion-mnist", resize_to = 8, max_images = 128 })
  if not ok then
    print("SKIP: Fashion-MNIST not installed (dataset-fashion-mnist): " .. tostring(data))
    return
  end
  local unet = { "unet", channels = 8, multipliers = { 1, 2 }, attn_resolutions = { 4 }, dropout = 0.2 }
  local t = wb.teacher(with{ data = data, net = unet, steps = 8, batch = 8, log_every = 2, run = args.out .. "/teacher",
                             quiet = true, grid = 4 })
  wb.distill(with{ teacher = t, data = data, divergence = "kl", steps = 6, batch = 8, log_every = 2, eval_samples = 0,
                   ratio = { "gan-head", feature = "mid" }, run = args.out .. "/kl", quiet = true, grid = 4 })
elseif args.part == "long" then
  local data = wb.data.gmm2d{ preset = "ring8" }
  local t = wb.teacher(with{ data = data, steps = 20, batch = 64, log_every = 10, run = args.out .. "/teacher",
                             quiet = true })
  wb.distill(with{ teacher = t, data = data, divergence = "kl", steps = args.steps, batch = 64, log_every = 20,
                   eval_samples = 0, run = args.out .. "/kl", quiet = true, checkpoint_every = args.checkpoint_every })
else
  error("part = " .. args.part .. ": want 2d, images or long")
end
print(("dp runs done: %s on %d rank(s), rank %d"):format(args.part, wb.world_size(), wb.rank()))
