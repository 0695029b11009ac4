-- experiments/init_ablation.lua — the score-free paper's initialisation
-- ablation (Table 2): a one-step generator trained with DiJS on a TARGET set,
-- initialised from
--   (1) nothing                  random weights (wb.distill init = "none")
--   (2) single-level DSM         a teacher trained on the target set at σ = σ_init only
--   (3) multi-level DSM on a DISJOINT set, on growing class subsets
--   (4) the full target set      the usual EDM teacher
-- Paper (CIFAR-10): (1) collapses, (2) collapses, (3) CIFAR-100 classes not
-- in CIFAR-10: 10 → collapsed, 50 → 6.20, 90 → 6.01, (4) 2.39 FID.
--
-- How the initialisation reaches the student: wb.distill builds the generator
-- G(z) = D(σ_init·z, σ_init) from the teacher it is given (init = "teacher").
-- So each variant passes ITS OWN initialisation teacher as `teacher`, and
-- `data` is always the target set. That is sound for DiJS only because the
-- method is score-free: w_s ≡ 0, so the teacher's score never enters the
-- generator gradient, and with time_weight = "sigma2" (w = σ², at σ_fix = 2.5 in the paper profile)
-- the DMD normalisation, the one other use of D_teacher, is off. The ratio
-- estimator (the encoder half of the same UNet, a scalar logit) is trained on
-- noisy TARGET images vs noisy student samples. Variant (1) passes the target
-- teacher with init = "none" (its weights are then unused).
--
-- Targets and disjoint sets:
--   cpu / smoke  target = Fashion-MNIST classes {0..4} (T-shirt, trouser,
--                pullover, dress, coat); disjoint = classes {5..9} (sandal,
--                shirt, sneaker, bag, ankle boot) with subsets of 1, 3 and 5
--                classes: {5}, {5,6,7}, {5,6,7,8,9}
--   paper        target = CIFAR-10; disjoint = CIFAR-100 fine labels, nested
--                subsets of 10 / 50 / 90 classes (table below). The paper does
--                not list which classes it used; this choice is ours.
--
-- CIFAR-100 fine labels (0-based, alphabetical as in the dataset's meta file).
-- All 100 are disjoint from CIFAR-10 by construction (its authors removed
-- overlaps: "truck" has no pickup trucks), but to keep the 90-class set
-- clearly "not CIFAR-10" we leave out the 10 classes nearest to CIFAR-10's:
--   excluded: 8 bicycle, 13 bus, 19 cattle, 34 fox, 48 motorcycle,
--             58 pickup_truck, 81 streetcar, 89 tractor, 90 train, 97 wolf
--   90 classes: all others, in id order; 50 = the first 50 of those; 10 = the first 10:
--   10: 0 apple, 1 aquarium_fish, 2 baby, 3 bear, 4 beaver, 5 bed, 6 bee,
--       7 beetle, 9 bottle, 10 bowl
--   50: the 10 plus 11 boy … 56 palm_tree (ids 11-12, 14-18, 20-33, 35-47, 49-56)
--   90: the 50 plus 57 pear … 99 worm (ids 57, 59-80, 82-88, 91-96, 98, 99)
--
-- Reports: table.{md,tex,csv} — FID (+ precision, recall, classes covered,
-- collapse flag) per initialisation, like the paper's Table 2, plus the target
-- teacher's own row; fid.png — FID per initialisation (x = index);
-- fid_curves.png — FID during training (every eval_every updates);
-- runs/teacher-<init>/ and runs/dijs-<init>/ (samples.png from a fixed seed).
--
-- Arms (wb.arms; results in OUT/arms/<arm>.json): the reference row and each
-- variant — its teacher trains inside its arm — so --jobs N trains the
-- variants' teachers and students side by side, --slurm "..." as an array.
--
-- Run:   build/workbench run experiments/init_ablation.lua profile=smoke|cpu|paper [key=value ...]
--        paper: data=/path/to/cifar-10-batches-bin data100=/path/to/cifar-100-binary
--        teacher_dir=results/init_ablation-cpu/runs reloads earlier teachers
--        (runs/teacher-<key>/checkpoint.safetensors) instead of training them.
--
-- Budget arithmetic (cpu profile, 2 cores; costs in lib/common.lua):
--   5 teachers × 400 steps × 0.77 s                        ≈ 1540 s
--   6 DiJS runs × 200 steps × 1.2 s/step (batch 16)        ≈ 1440 s
--   metrics n = 256: target teacher Heun ≈ 110 s, the
--   target feature classifier (500 steps ≈ 55 s, cached),
--   6 student rows                                         ≈  200 s
--   total                                                  ≈ 3200 s ≈ 53 min
-- smoke (measured): ≈ 12 s.
local wb = require "wb"
local C = require "lib.common"

local args = wb.args{
  profile = "cpu",
  data = "",            -- CIFAR-10 directory (profile=paper)
  data100 = "",         -- CIFAR-100 binary directory (train.bin), profile=paper
  out = "",             -- default results/init_ablation-<profile>
  cache = "",           -- feature-classifier cache root (a subfolder per target set is used)
  steps = 0,            -- DiJS generator updates per variant (0: the profile's)
  batch = 0,
  teacher_steps = -1,   -- DSM steps per initialisation teacher (-1: the profile's)
  teacher_dir = "",     -- load runs/teacher-<key>/checkpoint.safetensors from here instead of training
  sigma_init = 2.5,     -- G(z) = D(σ_init·z, σ_init); also the single-level teacher's σ
  sigma_fixed = -1.0,   -- σ_fix of the generator loss, w = σ² (-1: the profile's — paper 2.5,
                        -- cpu/smoke 0 = σ from the Karras schedule)
  metrics_n = 0,        -- samples per metric (0: the profile's; paper 50000, cpu 256, smoke 64)
  inception = "",       -- FID Inception-v3 weights (safetensors): adds the papers' FID column
  eval_every = -1,      -- FID every this many generator updates (-1: the profile's, a quarter of the run; 0: only at the end)
  seed = 0,             -- the target teacher's seed and the first seed
  seeds = 0,            -- seeds from seed= on (0: the profile's — cpu 3, smoke and paper 1); seed s trains
                        -- each variant's initialisation teacher and its student (the target teacher is one)
  baseline = "multi-level DSM, full target", -- the row the others are tested against ("": none)
  quiet = false,
}
local P = C.profile(args, "init_ablation")
-- arguments checked before any work (a typo must not cost a teacher run)
C.check_args("init_ablation", args, C.COMMON_RULES)
C.check_args("init_ablation", args, {
  { "sigma_init", gt = 0 },
  { "sigma_fixed", min = 0, unset = -1, note = "-1: the profile's, 0: Karras sigma" },
  { "teacher_dir", dir = true },
  { "eval_every", int = true, min = 0, unset = -1, note = "-1: the profile's, 0: only at the end" },
})
C.require_divergences("init_ablation", nil, { "dijs" })
if P.name == "paper" and args.data100 == "" then
  error("init_ablation: profile=paper also needs the CIFAR-100 binary directory: data100=DIR (the folder " ..
        "holding train.bin, from https://www.cs.toronto.edu/~kriz/cifar.html)", 0)
end
-- the disjoint class subsets (CIFAR-100 class counts, or Fashion-MNIST classes) and their teachers' keys
local SUBSETS = P.name == "paper" and { 10, 50, 90 } or { { 5 }, { 5, 6, 7 }, { 5, 6, 7, 8, 9 } }
local function subset_key(sub) return P.name == "paper" and ("c100-%d"):format(sub) or ("fm-%dcls"):format(#sub) end
if args.teacher_dir ~= "" then -- every teacher it must hold, before the first is loaded
  local keys = { "full", "single" }
  for _, sub in ipairs(SUBSETS) do keys[#keys + 1] = subset_key(sub) end
  for _, key in ipairs(keys) do
    local path = ("%s/teacher-%s/checkpoint.safetensors"):format(args.teacher_dir, key)
    local f = io.open(path, "rb")
    if not f then error(("init_ablation: teacher_dir = %s: no %s"):format(args.teacher_dir, path), 0) end
    f:close()
  end
end

-- the paper's settings: batch 64, lr 1e-5, one ratio step per generator step,
-- w = σ² at σ_fix = 2.5. cpu / smoke use a larger lr (1e-5 moves a small net
-- too little in a few hundred steps for any difference between
-- initialisations to show; above 1e-4 DiJS collapses on Fashion-MNIST, as
-- measured in the divergence sweep) and σ from the Karras schedule (σ_fix =
-- 2.5 stalls at this budget: FID 17.4 and collapsed vs 16.0 in the sweep).
local D = ({
  paper = { steps = 200000, batch = 64, lr = 1e-5, lr_ratio = 1e-5, ema = 0.999 },
  cpu   = { steps = 200, batch = 16, lr = 1e-4, lr_ratio = 1e-3, ema = 0.95, sigma_fixed = 0 },
  smoke = { steps = 30, batch = 16, lr = 2e-4, lr_ratio = 1e-3, ema = 0.9, sigma_fixed = 0 },
})[P.name]
local sigma_fixed = args.sigma_fixed >= 0 and args.sigma_fixed or D.sigma_fixed or 2.5
if args.steps > 0 then D.steps = args.steps end
if args.batch > 0 then D.batch = args.batch end
if P.name == "cpu" then P.teacher.steps = 400 end
if args.teacher_steps >= 0 then P.teacher.steps = args.teacher_steps end
-- FID during training (have the rows stopped moving?): the evaluations draw
-- their own samples, so the trained weights and the final row do not change
local eval_every = args.eval_every >= 0 and args.eval_every or math.max(1, D.steps // (P.name == "paper" and 10 or 4))

local CIFAR100_EXCLUDED = { [8] = true, [13] = true, [19] = true, [34] = true, [48] = true,
                            [58] = true, [81] = true, [89] = true, [90] = true, [97] = true }
local function cifar100_classes(k)
  local ids = {}
  for id = 0, 99 do
    if not CIFAR100_EXCLUDED[id] and #ids < k then ids[#ids + 1] = id end
  end
  return ids
end

-- the disjoint subsets: each its own dataset (loaded by the arm that needs it) and teacher
local disjoint = {}
for _, sub in ipairs(SUBSETS) do
  if P.name == "paper" then
    disjoint[#disjoint + 1] = { key = subset_key(sub), label = ("DSM, %d CIFAR-100 classes"):format(sub),
                                include = cifar100_classes(sub), cifar100 = true }
  else
    disjoint[#disjoint + 1] = { key = subset_key(sub),
                                label = ("DSM, %d disjoint class%s {%s}"):format(#sub, #sub > 1 and "es" or "",
                                                                              table.concat(sub, ",")),
                                include = sub }
  end
end
local function disjoint_data(d)
  if d.cifar100 then
    return wb.data.images(C.with(P.data, { kind = "cifar100", path = args.data100, include = d.include }))
  end
  return C.dataset(P, { include = d.include })
end
-- metrics against the target set; its classifier must not share a cache file
-- with one trained on the full label set (the cache is keyed by dataset name)
P.cache = P.cache .. "/init_ablation-target"

local t0 = os.time()
wb.mkdir(P.out)

-- an initialisation teacher of seed `seed` (nil: the target teacher's seed);
-- the first seed keeps the one-seed folder names (teacher_dir=... layouts)
local function teacher(key, data, extra, seed)
  local dir = "teacher-" .. C.seeded_name(P, key, seed)
  local opts = C.with({ seed = seed or args.seed, run = P.out .. "/runs/" .. dir }, extra or {})
  if args.teacher_dir ~= "" then
    opts.init = ("%s/%s/checkpoint.safetensors"):format(args.teacher_dir, dir)
    opts.steps = 0
  end
  return C.teacher(P, data, opts)
end

-- the arms: the target teacher's reference row, then one DiJS student per
-- initialisation (each variant's teacher trained inside its arm)
local arms = {
  { name = "teacher", kind = "reference" },
  { name = "none", kind = "variant", label = "none (random)", source = "-", teacher = "full", init = "none" },
  { name = "single", kind = "variant", label = ("single-level DSM (sigma=%g)"):format(args.sigma_init),
    source = "target", teacher = "single" },
}
for i, d in ipairs(disjoint) do
  arms[#arms + 1] = { name = d.key, kind = "variant", label = d.label, source = "disjoint", teacher = "disjoint",
                      subset = i }
end
arms[#arms + 1] = { name = "full", kind = "variant", label = "multi-level DSM, full target", source = "target",
                    teacher = "full" }
arms = wb.stats.seed_arms(arms, P.seed_list) -- every row once per seed

local results = wb.arms{
  name = "init_ablation", out = P.out, arms = arms, report_args = { "baseline" }, -- another baseline re-reads the results
  setup = function() -- the target set and (4)'s teacher: the reference row, and the weights (1) ignores
    local target = P.name == "paper" and C.dataset(P) or C.dataset(P, { include = { 0, 1, 2, 3, 4 } })
    print(("init_ablation: profile %s, target %s (%d images), DiJS %d steps × batch %d, lr %g")
          :format(P.name, target.name, target.count, D.steps, D.batch, D.lr))
    return { target = target, full = teacher("full", target) }
  end,
  prepare = function(s) C.prepare_metrics(P, s.target) end, -- the target's feature classifier, cached for the arms
  run = function(arm, s)
    local target, full = s.target, s.full
    local function row(name, source, x, seconds)
      return C.metric_row({ init = name, source = source, seconds = seconds },
                          C.metrics(P, x, target, C.sample_seed(P, arm.seed)))
    end
    if arm.kind == "reference" then
      return { row = row("target teacher (Heun, 35 NFE)", "reference", full, full.train_seconds or 0) }
    end
    local t = full
    if arm.teacher == "single" then
      t = teacher("single", target, { single_sigma = args.sigma_init }, arm.seed)
    elseif arm.teacher == "disjoint" then
      local d = disjoint[arm.subset]
      t = teacher(d.key, disjoint_data(d), nil, arm.seed)
    end
    local evals, fid_curve = C.fid_evals(P, target, arm.seed, D.batch, eval_every)
    fid_curve.name = arm.base
    local run = P.out .. "/runs/dijs-" .. C.seeded_name(P, arm.base, arm.seed)
    local student = wb.distill(C.with({
      data = target, divergence = "dijs", ratio = C.classifier(P), seed = arm.seed,
      steps = D.steps, batch = D.batch, lr = D.lr, lr_ratio = D.lr_ratio, ema = D.ema,
      ratio_updates = 1, sigma_init = args.sigma_init, time_weight = "sigma2", sigma_fixed = sigma_fixed,
      log_every = C.log_every(D.steps), quiet = P.quiet,
    }, evals, { teacher = t, init = arm.init or "teacher", run = run }))
    local r = row(arm.label, arm.source, student, (t ~= full and t.train_seconds or 0) + student.train_seconds)
    -- the classifier's accuracy and DiJS's weight w_l during training
    local d = C.train_diagnostics(student, run, D.steps, "mean_w_l")
    r.disc_acc, r.w_mean, r.w_max = d.disc_acc, d.w_mean, d.w_max
    return { row = r, fid_curve = fid_curve }
  end,
}

-- the report, from the arms' results (any mode, or `workbench table experiments/init_ablation.lua ...`)
local rows, bars, fid_curves = {}, {}, {}
for _, g in ipairs(wb.stats.groups(results)) do
  local m = C.seed_row(g)
  rows[#rows + 1] = m
  if g.arm.kind == "variant" and g.results[1].fid_curve and #g.results[1].fid_curve.x > 0 then
    fid_curves[#fid_curves + 1] = C.seed_band(g, "fid_curve", g.arm.base)
  end
  if g.arm.kind == "variant" then
    local collapsed = m.collapsed == "yes" or (m.collapsed or ""):match("^[1-9]") ~= nil
    bars[#bars + 1] = C.bar_item(g.arm.name, m.fid, collapsed and "FID (collapsed in a seed)" or "FID")
  end
end

local columns = { { key = "init", label = "initialisation" }, { key = "source", label = "DSM data" },
                  { key = "fid", label = "FID", format = "%.2f" },
                  { key = "collapsed", label = "collapsed" }, { key = "classes", label = "classes" },
                  { key = "precision", label = "precision", format = "%.3f" },
                  { key = "recall", label = "recall", format = "%.3f" } }
for _, c in ipairs(C.diagnostic_columns("w_l")) do columns[#columns + 1] = c end
columns[#columns + 1] = { key = "seconds", label = "train s", format = "%.1f" }
C.write_table(P, rows, columns, { fid = "min", precision = "max", recall = "max" }, nil,
              C.baseline("init_ablation", rows, "init", args.baseline))

-- collapsed students get their own colour (the paper writes "collapsed" for them)
C.bar_plot(P.out .. "/fid.png", ("DiJS student FID by initialisation (%s)"):format(P.name),
           "FID", bars, { { name = "target teacher (35 NFE)", value = C.bar_item("", rows[1].fid).value } })

if #fid_curves > 0 then
  local ref = C.bar_item("", rows[1].fid).value
  fid_curves[#fid_curves + 1] = { name = "target teacher (35 NFE)", x = { 0, D.steps * D.batch }, y = { ref, ref } }
  wb.plot_lines(P.out .. "/fid_curves.png", { title = ("DiJS: FID during distillation by initialisation (%s)"):format(P.name),
    xlabel = "images seen", ylabel = "FID", series = fid_curves })
end

print(("\nwrote %s/table.{md,tex,csv}, fid.png, fid_curves.png, runs/ and arms/ (%.0f s)"):format(P.out, C.elapsed(t0)))
