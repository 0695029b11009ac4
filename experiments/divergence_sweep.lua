-- experiments/divergence_sweep.lua — every loaded divergence (wb.divergences():
-- the Di-Bregman family, the f-distill family and the score-free family)
-- distilled into a one-step generator from ONE teacher, with the same budget,
-- batch, seed and ratio estimator, on images.
--
--   teacher  EDM DSM UNet; its 18-step Heun sampler (35 NFE) is the reference row
--   students G(z) = D(σ_init·z, σ_init) initialised from the teacher, each
--            family with its papers' discriminator: the score-based ones
--            (Di-Bregman, f-distill) with f-distill's head on the teacher's
--            encoder features (enc32,enc16,enc8 at 32×32) and DMD's time
--            weighting; the score-free ones (DiKL, DiJS, DiRM) with their
--            paper's classifier (the encoder half of the same UNet, scalar
--            logit) and w = σ² — at σ = 2.5 in the paper profile, at σ from
--            the Karras schedule in cpu/smoke (sf_sigma=2.5 restores it).
--            Measured on the cpu profile (DiJS, 1600 images, FID from 24.8):
--            gan-head + σ² at 2.5: 17.4, collapsed; gan-head + DMD: 15.5;
--            classifier + σ² at Karras σ: 11.9, 7/10 classes; any generator
--            lr above 1e-4 collapses them (3e-4: 28.3). sf_ratio=gan-head
--            gives every row the same estimator.
--   reports  table.{md,tex,csv}: FID, precision, recall, IS, classes covered,
--            collapse flag for teacher, initialisation and every divergence;
--            curves.png (ratio-estimator BCE vs images seen), value.png (each
--            divergence's own value estimate vs images seen), fid.png (final
--            FID per divergence with the teacher and the initialisation as
--            reference lines); runs/<name>/ holds each run (config, log,
--            checkpoint, samples.png from a fixed seed)
--
-- FID is measured at the end and, with eval_every, during training; the
-- loss and value curves come from the training log (the MMD column is NaN
-- for images). Teacher row, initialisation and each divergence are wb.arms
-- arms (results in OUT/arms/<arm>.json): --jobs N runs them on local
-- workers, --slurm "..." as a Slurm job array (README, "Running on a
-- cluster"); the report is built from the results either way.
--
-- Run:   build/workbench run experiments/divergence_sweep.lua profile=smoke|cpu|paper [key=value ...]
--        paper needs data=/path/to/cifar-10-batches-bin
--
-- Budget arithmetic (cpu profile, 2 cores; costs in lib/common.lua; a
-- probe run with teacher_steps=20 steps=5 divergences=rkl,dijs took 194 s:
-- teacher 16 s, feature classifier 54 s, teacher Heun metrics ≈ 110 s,
-- distillation 0.9 and 0.6 it/s at batch 16):
--   teacher 1200 steps × 0.77 s                                ≈  920 s
--   14 divergences × 100 steps × ≈ 1.3 s/step (batch 16)       ≈ 1820 s
--   metrics, n = 256: feature classifier (500 steps, cached in
--   results/cache) ≈ 55 s, teacher Heun ≈ 110 s, 15 rows × 3 s ≈  210 s
--   total                                                      ≈ 2950 s ≈ 50 min
-- smoke (measured): ≈ 13 s. paper: GPU only.
local wb = require "wb"
local C = require "lib.common"

local args = wb.args{
  profile = "cpu",
  data = "",            -- CIFAR-10 directory (profile=paper), or another Fashion-MNIST copy
  out = "",             -- default results/divergence_sweep-<profile>
  cache = "",           -- feature-classifier cache, default results/cache
  steps = 0,            -- generator updates per divergence (0: the profile's)
  batch = 0,            -- (0: the profile's)
  teacher_steps = -1,   -- (-1: the profile's)
  teacher_init = "",    -- start the teacher from this checkpoint (with teacher_steps=0: just load it)
  divergences = "",     -- comma-separated subset; empty = every loaded divergence
  sba_lambda = 5.0,     -- Di-Bregman's best CIFAR-10 value (Table 2: λ = 5, FID 3.61); a number, so 0.5 parses
  metrics_n = 0,        -- samples per metric (0: the profile's; paper 50000, cpu 256, smoke 64)
  inception = "",       -- FID Inception-v3 weights (safetensors): adds the papers' FID column
  eval_every = -1,      -- FID every this many generator updates (-1: the profile's; 0: only at the end)
  time_weight = "dmd",  -- score-based rows: auto | dmd | sigma2 | none
  sf_ratio = "classifier", -- score-free rows: classifier (their paper's) | gan-head (the same as the others)
  sf_sigma = -1.0,      -- score-free rows: w = σ² at this fixed σ (-1: the profile's; 0: Karras σ; 2.5: the paper's)
  seed = 0,             -- the teacher's seed and the first student seed
  seeds = 0,            -- student seeds from seed= on (0: the profile's — cpu 3, smoke and paper 1)
  baseline = "rkl",     -- the row the others are tested against (paired over seeds; "": none)
  quiet = false,
}
local P = C.profile(args, "divergence_sweep")
-- arguments checked before any work (a typo must not cost a teacher run)
C.check_args("divergence_sweep", args, C.COMMON_RULES)
C.check_args("divergence_sweep", args, {
  { "eval_every", int = true, min = 0, unset = -1, note = "-1: the profile's, 0: only at the end" },
  { "time_weight", choices = { "auto", "dmd", "sigma2", "none" } },
  { "sf_ratio", choices = { "classifier", "gan-head" } },
  { "sf_sigma", min = 0, unset = -1, note = "-1: the profile's, 0: Karras sigma" },
})
local names = wb.select_divergences(args.divergences)
for _, name in ipairs(names) do
  if name == "sba" then C.check_spec("divergence_sweep", "sba_lambda", args.sba_lambda, { "sba", lambda = args.sba_lambda }) end
end

-- distillation settings per profile. paper: one budget for every divergence —
-- batch 64, lr 1e-5 (the score-free paper's; f-distill / DMD2 use their own
-- per-method schedules, which a like-for-like sweep does not reproduce), one
-- ratio and one fake-score update per generator update, EMA 0.999.
local D = ({
  paper = { steps = 200000, batch = 64, lr = 1e-5, lr_ratio = 1e-5, lr_fake = 1e-5, ema = 0.999 },
  cpu   = { steps = 100, batch = 16, lr = 1e-4, lr_ratio = 1e-3, lr_fake = 1e-3, ema = 0.95, sf_sigma = 0 },
  smoke = { steps = 20, batch = 16, lr = 1e-4, lr_ratio = 1e-3, lr_fake = 1e-3, ema = 0.9, sf_sigma = 0 },
})[P.name]
local sf_sigma = args.sf_sigma >= 0 and args.sf_sigma or D.sf_sigma or 2.5
if args.steps > 0 then D.steps = args.steps end
if args.batch > 0 then D.batch = args.batch end
if args.teacher_steps >= 0 then P.teacher.steps = args.teacher_steps end
-- mid-run FID (fid_curves.png): 4 points per run besides the start, 10 in the paper profile
local eval_every = args.eval_every >= 0 and args.eval_every or math.max(1, D.steps // (P.name == "paper" and 10 or 4))

local t0 = os.time()
wb.mkdir(P.out)
local family = wb.divergence_families()
local score_free_set = wb.score_free_divergences() -- the plugins' own flag, not their family's name

-- the arms: the teacher's row, the untrained initialisation, one student per
-- divergence, each once per seed (the teacher trains once, in setup)
local arms = { { name = "teacher", kind = "teacher" }, { name = "initialisation", kind = "init" } }
for _, name in ipairs(names) do arms[#arms + 1] = { name = name, kind = "student", divergence = name } end
arms = wb.stats.seed_arms(arms, P.seed_list)

local results = wb.arms{
  name = "divergence_sweep", out = P.out, arms = arms, report_args = { "baseline" }, -- another baseline re-reads the results
  -- 1. the teacher: trained once (workers and array tasks load runs/teacher)
  setup = function()
    local data = C.dataset(P)
    print(("divergence_sweep: profile %s, %s (%d images, %dx%dx%d), %d steps × batch %d per divergence")
          :format(P.name, data.name, data.count, data.channels, data.height, data.width, D.steps, D.batch))
    local teacher = C.teacher(P, data, { seed = args.seed, run = P.out .. "/runs/teacher", init = args.teacher_init })
    return { data = data, teacher = teacher }
  end,
  -- the metrics' feature classifier, trained once here and cached for the arms
  prepare = function(s) C.prepare_metrics(P, s.data) end,
  -- 2. one arm: its metric row and curves
  run = function(arm, s)
    local data, teacher = s.data, s.teacher
    local common = {
      teacher = teacher, data = data, ratio = C.gan_head(P), seed = arm.seed,
      steps = D.steps, batch = D.batch, lr = D.lr, lr_ratio = D.lr_ratio, lr_fake = D.lr_fake, ema = D.ema,
      ratio_updates = 1, fake_updates = 1, time_weight = args.time_weight,
      log_every = C.log_every(D.steps), quiet = P.quiet,
    }
    local function row(name, fam, nfe, x, seconds, ratio)
      return C.metric_row({ method = name, family = fam, ratio = ratio or "-", nfe = nfe, seconds = seconds },
                          C.metrics(P, x, data, C.sample_seed(P, arm.seed)))
    end
    if arm.kind == "teacher" then
      return { row = row("teacher (Heun)", "EDM", 35, teacher, teacher.train_seconds or 0) }
    elseif arm.kind == "init" then -- the untrained one-step generator every student starts from
      local init = wb.distill(C.with(common, { divergence = "kl", steps = 0, log_every = 0, quiet = true }))
      return { row = row("initialisation", "-", 1, init, 0) }
    end
    local name = arm.divergence
    local spec, label = name, name
    if name == "sba" then
      spec, label = { "sba", lambda = args.sba_lambda }, ("sba (lambda=%g)"):format(args.sba_lambda)
    end
    -- the score-free family's own recipe (see the header)
    local sf = score_free_set[name] == true
    local score_free = {
      ratio = args.sf_ratio == "classifier" and C.classifier(P) or C.gan_head(P),
      time_weight = "sigma2", sigma_fixed = sf_sigma,
    }
    local evals, fid_curve = C.fid_evals(P, data, arm.seed, D.batch, eval_every)
    local run = P.out .. "/runs/" .. C.seeded_name(P, name, arm.seed)
    local student = wb.distill(C.with(common, sf and score_free or {}, evals, { divergence = spec, run = run }))
    local r = row(label, family[name] or "?", 1, student, student.train_seconds, sf and args.sf_ratio or "gan-head")
    -- the discriminator's accuracy and the weight during training: w_s (score-based) or w_l (score-free)
    local d = C.train_diagnostics(student, run, D.steps, sf and "mean_w_l" or "mean_w_s")
    r.disc_acc, r.w_mean, r.w_max = d.disc_acc, d.w_mean, d.w_max
    return { row = r,
             fid_curve = fid_curve,
             loss_curve = C.curve(name, student, "ratio_loss", D.batch),
             value_curve = C.curve(name, student, "value", D.batch) }
  end,
}

-- 3. the report (from the arms' results: the same in every mode, and for
-- `workbench table experiments/divergence_sweep.lua ...`) ------------------------------
local rows, loss_curves, value_curves, fid_curves, bars = {}, {}, {}, {}, {}
local groups = wb.stats.groups(results)
local function mean(v)
  if type(v) ~= "table" then return v end
  local s = 0
  for _, x in ipairs(v) do s = s + x end
  return s / #v
end
local m_teacher, m_init = C.seed_row(groups.by_name.teacher), C.seed_row(groups.by_name.initialisation)
for _, g in ipairs(groups) do
  local row = C.seed_row(g)
  rows[#rows + 1] = row
  if g.arm.kind == "student" then
    local name = g.arm.divergence
    -- every student starts at the initialisation (per seed: its own draws)
    local per_seed = {}
    for i, res in ipairs(g.results) do
      local init_fid = groups.by_name.initialisation.results[i].row.fid
      local curve = { name = name, x = { 0 }, y = { init_fid } }
      for j, x in ipairs(res.fid_curve.x) do curve.x[#curve.x + 1], curve.y[#curve.y + 1] = x, res.fid_curve.y[j] end
      per_seed[i] = { fid_curve = curve, loss_curve = res.loss_curve, value_curve = res.value_curve }
    end
    local grouped = { results = per_seed }
    fid_curves[#fid_curves + 1] = C.seed_band(grouped, "fid_curve", name)
    bars[#bars + 1] = C.bar_item(name, row.fid)
    loss_curves[#loss_curves + 1] = C.seed_band(grouped, "loss_curve", name)
    value_curves[#value_curves + 1] = C.seed_band(grouped, "value_curve", name)
  end
end

local columns = { { key = "method", label = "method" }, { key = "family", label = "family" },
                  { key = "ratio", label = "discriminator" },
                  { key = "nfe", label = "NFE", format = "%d" } }
for _, c in ipairs(C.METRIC_COLUMNS) do columns[#columns + 1] = c end
for _, c in ipairs(C.diagnostic_columns("w (w_s or w_l)")) do columns[#columns + 1] = c end
columns[#columns + 1] = { key = "seconds", label = "train s", format = "%.1f" }
C.write_table(P, rows, columns, { fid = "min", precision = "max", recall = "max", is = "max" }, nil,
              C.baseline("divergence_sweep", rows, "method", args.baseline))

if #loss_curves > 0 then
  wb.plot_lines(P.out .. "/curves.png", { title = "ratio-estimator BCE during distillation",
    xlabel = "images seen", ylabel = "BCE (real vs student)", series = loss_curves })
end
if eval_every > 0 and #fid_curves > 0 then
  local last = D.steps * D.batch
  fid_curves[#fid_curves + 1] = { name = "teacher (35 NFE)", x = { 0, last }, y = { mean(m_teacher.fid), mean(m_teacher.fid) } }
  wb.plot_lines(P.out .. "/fid_curves.png", { title = ("FID during distillation (%s)"):format(P.name),
    xlabel = "images seen", ylabel = "FID", series = fid_curves })
end
if #value_curves > 0 then
  wb.plot_lines(P.out .. "/value.png", { title = "divergence value estimate (each plugin's own)",
    xlabel = "images seen", ylabel = "value", series = value_curves })
end
C.bar_plot(P.out .. "/fid.png", ("final FID after %d images (%s)"):format(D.steps * D.batch, P.name), "FID", bars,
           { { name = "teacher (35 NFE)", value = mean(m_teacher.fid) }, { name = "initialisation", value = mean(m_init.fid) } })

print(("\nwrote %s/table.{md,tex,csv}, fid_curves.png, curves.png, value.png, fid.png, runs/*/samples.png and " ..
       "arms/ (%.0f s)"):format(P.out, C.elapsed(t0)))
