-- bench/dp_step.lua — one teacher and one distillation of a given net, batch
-- and length, timed from their metrics.jsonl: the per-step wall time and the
-- time inside collectives (comm_seconds, logged on more than one rank) of
-- each log interval after the first (the first, steps 1 … log_every, is the
-- warm-up: arena growth, first touches, and setup before step 1). Run by
-- bench/dp_scaling.sh on 1 rank (no launcher) and under mpirun; a benchmark,
-- never a test.
--
--   workbench run bench/dp_step.lua out=DIR net=mlp|unet-smoke|unet-cpu
--       [batch=0] [teacher_every=0] [teacher_points=0] [distill_every=0] [distill_points=0]
--       [reduction=fast|deterministic] [shards=2]
--
-- Nets (0 above: the net's defaults, in NETS below):
--   mlp         the quickstart's: mlp widths 128,128,128 on gmm2d ring8-imbalanced,
--               batch 256; distillation kl with the default ratio estimator
--               (classifier, mlp backbone), one fake and one ratio update
--   unet-smoke  the experiments' smoke-profile UNet (channels 8, multipliers
--               1,2, no attention) on Fashion-MNIST resized to 8×8, batch 16;
--               distillation kl + gan-head on the teacher's enc8,enc4
--   unet-cpu    the cpu-profile UNet (channels 16, multipliers 1,2,2,
--               attention at 16×16) on Fashion-MNIST padded to 32×32, batch 16;
--               kl + gan-head on enc32,enc16,enc8
-- Every run: hash_every = 0 (no parameter-hash check inside the timed
-- intervals), eval_samples = 0, grid = 0, quiet.
--
-- Rank 0 prints one line per phase for the shell script to pool:
--   DP_STEP net=… phase=teacher|distill ranks=N threads=T reduction=… batch=B every=L
--           ms=m1,m2,… comm_ms=c1,c2,…      (per step, one value per timed interval;
--                                            comm_ms "-" on one rank)
--   DP_PARAMS net=… teacher=teacher:N distill=gen:N,gen_ema:N,fake:N,ratio:N,…
--           (floats per parameter store, from the checkpoints)
local wb = require("wb")
local args = wb.args{
  out = "", net = "mlp", batch = 0,
  teacher_every = 0, teacher_points = 0, distill_every = 0, distill_points = 0,
  reduction = "fast", shards = 2,
}
assert(args.out ~= "", "dp_step.lua: out=DIR is required (an empty folder: the runs go in it)")

local NETS = {
  mlp = {
    data = function() return wb.data.gmm2d{ preset = "ring8-imbalanced" } end,
    net = { "mlp", widths = { 128, 128, 128 } },
    batch = 256, teacher_every = 50, teacher_points = 4, distill_every = 15, distill_points = 4,
    distill = {},  -- ratio: the default classifier with an mlp backbone
  },
  ["unet-smoke"] = {
    data = function() return wb.data.images{ kind = "fashion-mnist", resize_to = 8, max_images = 2048 } end,
    net = { "unet", channels = 8, multipliers = { 1, 2 }, attn_resolutions = { 1 } },
    batch = 16, teacher_every = 10, teacher_points = 4, distill_every = 4, distill_points = 4,
    distill = { ratio = { "gan-head", features = "teacher", feature = "enc8,enc4" },
                lr = 1e-4, lr_ratio = 1e-3, lr_fake = 1e-3, ema = 0.9 },
  },
  ["unet-cpu"] = {
    data = function() return wb.data.images{ kind = "fashion-mnist", pad_to = 32, max_images = 2048 } end,
    net = { "unet", channels = 16, multipliers = { 1, 2, 2 }, attn_resolutions = { 16 } },
    batch = 16, teacher_every = 2, teacher_points = 3, distill_every = 2, distill_points = 2,
    distill = { ratio = { "gan-head", features = "teacher", feature = "enc32,enc16,enc8" },
                lr = 1e-4, lr_ratio = 1e-3, lr_fake = 1e-3, ema = 0.95 },
  },
}
local N = NETS[args.net]
if not N then error(("dp_step.lua: net = %s: want mlp, unet-smoke or unet-cpu"):format(args.net), 0) end
local function pick(k) return args[k] > 0 and args[k] or N[k] end
local batch = pick("batch")
local t_every, t_points = pick("teacher_every"), pick("teacher_points")
local d_every, d_points = pick("distill_every"), pick("distill_points")

local dp = { reduction = args.reduction, shards = args.shards, hash_every = 0, quiet = true, grid = 0 }
local function with(...)
  local t = {}
  for _, part in ipairs{ dp, ... } do for k, v in pairs(part) do t[k] = v end end
  return t
end

local data = N.data()
local teacher = wb.teacher(with{ data = data, net = N.net, batch = batch, steps = t_every * (t_points + 1),
                                 log_every = t_every, run = args.out .. "/teacher" })
wb.distill(with(N.distill, { teacher = teacher, data = data, divergence = "kl", batch = batch,
                             steps = d_every * (d_points + 1), log_every = d_every, eval_samples = 0,
                             fake_updates = 1, ratio_updates = 1, run = args.out .. "/distill" }))

if wb.rank() ~= 0 then return end -- rank 0 alone writes metrics.jsonl

-- (step, seconds, comm_seconds) of every metrics line; the per-step time of
-- each interval between consecutive lines, the first line being the end of
-- the warm-up
local function intervals(path)
  local pts = {}
  for line in io.lines(path) do
    local step = tonumber(line:match('"step": *(%d+)'))
    local sec = tonumber(line:match('"seconds": *([%d.eE+-]+)'))
    local comm = tonumber(line:match('"comm_seconds": *([%d.eE+-]+)'))
    if step and sec then pts[#pts + 1] = { step, sec, comm } end
  end
  local ms, comm_ms = {}, {}
  for i = 2, #pts do
    local ds = pts[i][1] - pts[i - 1][1]
    ms[#ms + 1] = ("%.4f"):format(1e3 * (pts[i][2] - pts[i - 1][2]) / ds)
    comm_ms[#comm_ms + 1] = (pts[i][3] and pts[i - 1][3])
        and ("%.4f"):format(1e3 * (pts[i][3] - pts[i - 1][3]) / ds) or "-"
  end
  assert(#ms > 0, path .. ": fewer than two log lines")
  return table.concat(ms, ","), table.concat(comm_ms, ",")
end

-- floats per parameter store, from a checkpoint's safetensors header (8-byte
-- length, then JSON): the sizes of the all-reduces a step makes
local function store_floats(path)
  local f = assert(io.open(path, "rb"))
  local n = string.unpack("<I8", f:read(8))
  local header = f:read(n)
  f:close()
  local sums, order = {}, {}
  for name, shape in header:gmatch('"([^"]+)"%s*:%s*{[^}]-"shape"%s*:%s*%[([%d,%s]*)%]') do
    local store, count = name:match("^([^.]+)%."), 1
    for d in shape:gmatch("%d+") do count = count * tonumber(d) end
    if store then
      if not sums[store] then order[#order + 1] = store; sums[store] = 0 end
      sums[store] = sums[store] + count
    end
  end
  local parts = {}
  for _, k in ipairs(order) do parts[#parts + 1] = ("%s:%d"):format(k, sums[k]) end
  return table.concat(parts, ",")
end
print(("DP_PARAMS net=%s teacher=%s distill=%s"):format(args.net,
      store_floats(args.out .. "/teacher/checkpoint.safetensors"), store_floats(args.out .. "/distill/checkpoint.safetensors")))

local threads = os.getenv("OMP_NUM_THREADS") or "?"
for _, phase in ipairs{ { "teacher", t_every }, { "distill", d_every } } do
  local ms, comm = intervals(("%s/%s/metrics.jsonl"):format(args.out, phase[1]))
  print(("DP_STEP net=%s phase=%s ranks=%d threads=%s reduction=%s batch=%d every=%d ms=%s comm_ms=%s")
        :format(args.net, phase[1], wb.world_size(), threads, args.reduction, batch, phase[2], ms, comm))
end
