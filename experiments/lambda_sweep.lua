-- experiments/lambda_sweep.lua — Di-Bregman's SBA family, w_s(l) = e^{−λ l}
-- = (q/p)^λ, over λ ∈ {−1, 0.5, 1, 3, 5, 10} against reverse KL (rkl, DMD's
-- objective; λ = 0 is the same weight), all from one teacher with the same
-- budget, batch, seed and ratio estimator. The paper reports λ = 3, 5, 10 as
-- best and λ = −1 (w_s = p/q, "be") as worst on CIFAR-10 (λ = 5: FID 3.61).
--
--   teacher  EDM DSM UNet (reference row, 35 NFE)
--   students one-step generators initialised from the teacher; f-distill's
--            head on the teacher encoder (enc32,enc16,enc8) as the ratio
--            estimator, or with ratio=fake-encoder SiDA's (the fake score's
--            deepest encoder map, mean over channels, trained jointly with
--            its DSM loss — the discriminator Di-Bregman uses); DMD time
--            weighting (score-based objectives)
--   reports  table.{md,tex,csv} (FID, precision, recall, IS, classes covered,
--            collapse flag per λ, rkl, teacher, initialisation); fid_lambda.png
--            (FID vs λ with rkl, teacher and initialisation as horizontal
--            reference lines); fid_curves.png (FID during training,
--            every eval_every updates: have the rows stopped moving?);
--            curves.png (ratio BCE vs images seen);
--            runs/<name>/samples.png
--
-- Run:   build/workbench run experiments/lambda_sweep.lua profile=smoke|cpu|paper [key=value ...]
--        paper needs data=/path/to/cifar-10-batches-bin
--        Each row is a wb.arms arm (results in OUT/arms/<arm>.json): --jobs N
--        runs them on local workers, --slurm "..." as a Slurm job array.
--
-- Budget arithmetic (cpu profile, 2 cores; costs in lib/common.lua):
--   teacher 1200 steps × 0.77 s                         ≈  920 s
--   7 runs × 100 steps × ≈ 1.3 s/step (batch 16)        ≈  910 s
--   metrics n = 256 (feature classifier ≈ 55 s unless
--   cached in results/cache, teacher Heun ≈ 110 s,
--   8 student rows)                                     ≈  200 s
--   total                                               ≈ 2030 s ≈ 35 min
-- (100 steps, the divergence sweep's budget, so its rkl row compares.)
-- smoke (measured): ≈ 8 s.
-- Reuse the divergence sweep's teacher to save ≈ 15 min:
--   teacher_init=results/divergence_sweep-cpu/runs/teacher/checkpoint.safetensors teacher_steps=0
local wb = require "wb"
local C = require "lib.common"

local args = wb.args{
  profile = "cpu",
  data = "",            -- CIFAR-10 directory (profile=paper)
  out = "",             -- default results/lambda_sweep-<profile> (ratio=fake-encoder: ...-<profile>-fake-encoder)
  cache = "",           -- feature-classifier cache, default results/cache
  lambdas = "-1,0.5,1,3,5,10",
  ratio = "gan-head",   -- gan-head (f-distill's head on the teacher encoder) | fake-encoder (SiDA's, which
                        -- Di-Bregman uses: the fake score's deepest encoder map, mean over channels, trained
                        -- with its DSM loss)
  steps = 0,            -- generator updates per run (0: the profile's)
  batch = 0,
  teacher_steps = -1,
  teacher_init = "",    -- start the teacher from this checkpoint (teacher_steps=0: just load it)
  metrics_n = 0,        -- samples per metric (0: the profile's; paper 50000, cpu 256, smoke 64)
  inception = "",       -- FID Inception-v3 weights (safetensors): adds the papers' FID column
  eval_every = -1,      -- FID every this many generator updates (-1: the profile's, a quarter of the run; 0: only at the end)
  seed = 0,             -- the teacher's seed and the first student seed
  seeds = 0,            -- student seeds from seed= on (0: the profile's — cpu 3, smoke and paper 1)
  baseline = "rkl (reverse KL)", -- the row the others are tested against (paired over seeds; "": none)
  quiet = false,
}
local P = C.profile(args, "lambda_sweep")
-- the two estimators' sweeps are different experiments: by default each has
-- its own folder (one would otherwise refuse the other's results)
if args.out == "" and args.ratio == "fake-encoder" then P.out = P.out .. "-fake-encoder" end
-- arguments checked before any work (a typo must not cost a teacher run)
C.check_args("lambda_sweep", args, C.COMMON_RULES)
C.check_args("lambda_sweep", args, { { "ratio", choices = { "gan-head", "fake-encoder" } },
  { "eval_every", int = true, min = 0, unset = -1, note = "-1: the profile's, 0: only at the end" } })
C.require_divergences("lambda_sweep", nil, { "rkl", "sba" })

-- paper: batch 64, generator lr 1e-5 (one budget for all λ; the Di-Bregman
-- paper's own schedule is not reproduced exactly), ratio and fake score
-- updated once per generator update.
local D = ({
  paper = { steps = 200000, batch = 64, lr = 1e-5, lr_ratio = 1e-5, lr_fake = 1e-5, ema = 0.999 },
  cpu   = { steps = 100, batch = 16, lr = 1e-4, lr_ratio = 1e-3, lr_fake = 1e-3, ema = 0.95 },
  smoke = { steps = 20, batch = 16, lr = 1e-4, lr_ratio = 1e-3, lr_fake = 1e-3, ema = 0.9 },
})[P.name]
if args.steps > 0 then D.steps = args.steps end
if args.batch > 0 then D.batch = args.batch end
if args.teacher_steps >= 0 then P.teacher.steps = args.teacher_steps end
-- FID during training (have the rows stopped moving?): the evaluations draw
-- their own samples, so the trained weights and the final row do not change
local eval_every = args.eval_every >= 0 and args.eval_every or math.max(1, D.steps // (P.name == "paper" and 10 or 4))

local lambdas, seen = {}, {}
for v in args.lambdas:gmatch("[^,%s]+") do
  local x = tonumber(v)
  if x == nil then error(("lambda_sweep: lambdas = %s: '%s' is not a number"):format(args.lambdas, v), 0) end
  C.check_spec("lambda_sweep", "lambdas", args.lambdas, { "sba", lambda = x }) -- within SBA's bounds
  local run = ("sba_%g"):format(x) -- its run folder: one per value
  if seen[run] then error(("lambda_sweep: lambdas = %s: %g is given twice"):format(args.lambdas, x), 0) end
  seen[run] = true
  lambdas[#lambdas + 1] = x
end
if #lambdas == 0 then error(("lambda_sweep: lambdas = '%s': no value given"):format(args.lambdas), 0) end

-- the ratio estimator: with fake-encoder the fake score's loss carries the
-- BCE and the host runs no separate ratio update (ratio_updates is ignored)
local ratio_spec = args.ratio == "fake-encoder" and { "fake-encoder" } or C.gan_head(P)

local t0 = os.time()
wb.mkdir(P.out)

-- the arms: teacher row, initialisation, rkl, one SBA run per λ
local arms = { { name = "teacher", kind = "teacher" }, { name = "initialisation", kind = "init" },
               { name = "rkl", kind = "rkl" } }
for _, lambda in ipairs(lambdas) do arms[#arms + 1] = { name = ("sba_%g"):format(lambda), kind = "sba", lambda = lambda } end
arms = wb.stats.seed_arms(arms, P.seed_list) -- each once per seed; the teacher trains once, in setup

local results = wb.arms{
  name = "lambda_sweep", out = P.out, arms = arms, report_args = { "baseline" }, -- another baseline re-reads the results
  setup = function() -- the teacher: trained once (the arms' processes load runs/teacher)
    local data = C.dataset(P)
    print(("lambda_sweep: profile %s, %s (%d images), λ ∈ {%s} vs rkl, %d steps × batch %d, ratio %s")
          :format(P.name, data.name, data.count, args.lambdas, D.steps, D.batch, args.ratio))
    local teacher = C.teacher(P, data, { seed = args.seed, run = P.out .. "/runs/teacher", init = args.teacher_init })
    return { data = data, teacher = teacher }
  end,
  prepare = function(s) C.prepare_metrics(P, s.data) end, -- the feature classifier, cached for the arms
  run = function(arm, s)
    local data, teacher = s.data, s.teacher
    local function row(name, lambda, nfe, x, seconds, run_dir)
      local r = C.metric_row({ method = name, lambda = lambda, nfe = nfe, seconds = seconds },
                             C.metrics(P, x, data, C.sample_seed(P, arm.seed)))
      -- the discriminator's accuracy and the weight e^{−λl} during training (students only)
      if run_dir then
        local d = C.train_diagnostics(x, run_dir, D.steps, "mean_w_s")
        r.disc_acc, r.w_mean, r.w_max = d.disc_acc, d.w_mean, d.w_max
      end
      return r
    end
    local common = {
      teacher = teacher, data = data, ratio = ratio_spec, seed = arm.seed,
      steps = D.steps, batch = D.batch, lr = D.lr, lr_ratio = D.lr_ratio, lr_fake = D.lr_fake, ema = D.ema,
      ratio_updates = 1, fake_updates = 1, time_weight = "dmd",
      log_every = C.log_every(D.steps), quiet = P.quiet,
    }
    if arm.kind == "teacher" then
      return { row = row("teacher (Heun)", "-", 35, teacher, teacher.train_seconds or 0) }
    elseif arm.kind == "init" then
      local init = wb.distill(C.with(common, { divergence = "rkl", steps = 0, log_every = 0, quiet = true }))
      return { row = row("initialisation", "-", 1, init, 0) }
    end
    local evals, fid_curve = C.fid_evals(P, data, arm.seed, D.batch, eval_every)
    if arm.kind == "rkl" then
      local run = P.out .. "/runs/" .. C.seeded_name(P, "rkl", arm.seed)
      local rkl = wb.distill(C.with(common, evals, { divergence = "rkl", run = run }))
      return { row = row("rkl (reverse KL)", "-", 1, rkl, rkl.train_seconds, run),
               curve = C.curve("rkl", rkl, "ratio_loss", D.batch), fid_curve = fid_curve }
    end
    local run = P.out .. "/runs/" .. C.seeded_name(P, arm.base, arm.seed)
    local st = wb.distill(C.with(common, evals, { divergence = { "sba", lambda = arm.lambda }, run = run }))
    return { row = row(("sba (lambda=%g)"):format(arm.lambda), ("%g"):format(arm.lambda), 1, st, st.train_seconds, run),
             curve = C.curve(("lambda=%g"):format(arm.lambda), st, "ratio_loss", D.batch), fid_curve = fid_curve }
  end,
}

-- the report, from the arms' results (any mode, or `workbench table experiments/lambda_sweep.lua ...`)
local rows, curves, fid_curves, fid_x, fid_y, fid_lo, fid_hi = {}, {}, {}, {}, {}, {}, {}
local groups = wb.stats.groups(results)
local function mean(v) return C.bar_item("", v).value end
for _, g in ipairs(groups) do
  local m = C.seed_row(g)
  rows[#rows + 1] = m
  if (g.arm.kind == "sba" or g.arm.kind == "rkl") and g.results[1].fid_curve and #g.results[1].fid_curve.x > 0 then
    -- each seed's curve starts at its initialisation's FID (the same draws)
    local name = g.arm.kind == "rkl" and "rkl" or ("lambda=%g"):format(g.arm.lambda)
    local per_seed = {}
    for i, res in ipairs(g.results) do
      local curve = { name = name, x = { 0 }, y = { groups.by_name.initialisation.results[i].row.fid } }
      for j, x in ipairs(res.fid_curve.x) do curve.x[#curve.x + 1], curve.y[#curve.y + 1] = x, res.fid_curve.y[j] end
      per_seed[i] = { fid_curve = curve }
    end
    fid_curves[#fid_curves + 1] = C.seed_band({ results = per_seed }, "fid_curve", name)
  end
  local fid = C.bar_item("", m.fid)
  if g.arm.kind == "sba" and fid.value == fid.value and fid.value ~= math.huge then
    local k = #fid_x + 1
    fid_x[k], fid_y[k] = g.arm.lambda, fid.value
    fid_lo[k], fid_hi[k] = fid.lo or fid.value, fid.hi or fid.value
  end
  curves[#curves + 1] = C.seed_band(g, "curve")
end
local m_teacher, m_init, m_rkl = C.seed_row(groups.by_name.teacher), C.seed_row(groups.by_name.initialisation),
                                 C.seed_row(groups.by_name.rkl)

local columns = { { key = "method", label = "method" }, { key = "lambda", label = "λ", latex = "$\\lambda$" },
                  { key = "nfe", label = "NFE", format = "%d" } }
for _, c in ipairs(C.METRIC_COLUMNS) do columns[#columns + 1] = c end
for _, c in ipairs(C.diagnostic_columns("w_s")) do columns[#columns + 1] = c end
columns[#columns + 1] = { key = "seconds", label = "train s", format = "%.1f" }
C.write_table(P, rows, columns, { fid = "min", precision = "max", recall = "max", is = "max" }, nil,
              C.baseline("lambda_sweep", rows, "method", args.baseline))

-- FID vs λ, with the references as horizontal lines over the λ range
local lo, hi = math.min(table.unpack(lambdas)), math.max(table.unpack(lambdas))
if hi <= lo then hi = lo + 1 end
local series = {}
if #fid_x > 0 then
  series[#series + 1] = { name = #P.seed_list > 1 and "sba(lambda), 95 % interval" or "sba(lambda)", x = fid_x, y = fid_y,
                          lo = #P.seed_list > 1 and fid_lo or nil, hi = #P.seed_list > 1 and fid_hi or nil }
end
for _, ref in ipairs{ { "rkl", mean(m_rkl.fid) }, { "teacher (35 NFE)", mean(m_teacher.fid) }, { "initialisation", mean(m_init.fid) } } do
  if ref[2] == ref[2] and ref[2] ~= math.huge then
    series[#series + 1] = { name = ref[1], x = { lo, hi }, y = { ref[2], ref[2] } }
  end
end
if #series > 0 then
  wb.plot_lines(P.out .. "/fid_lambda.png", { title = ("SBA: FID vs lambda (%s, %d images)"):format(P.name, D.steps * D.batch),
    xlabel = "lambda (w_s = exp(-lambda l))", ylabel = "FID", series = series })
end
if #fid_curves > 0 then
  local last = D.steps * D.batch
  fid_curves[#fid_curves + 1] = { name = "teacher (35 NFE)", x = { 0, last }, y = { mean(m_teacher.fid), mean(m_teacher.fid) } }
  wb.plot_lines(P.out .. "/fid_curves.png", { title = ("SBA: FID during distillation (%s, ratio %s)"):format(P.name, args.ratio),
    xlabel = "images seen", ylabel = "FID", series = fid_curves })
end
if #curves > 0 then
  wb.plot_lines(P.out .. "/curves.png", { title = "ratio-estimator BCE during distillation",
    xlabel = "images seen", ylabel = "BCE (real vs student)", series = curves })
end

print(("\nwrote %s/table.{md,tex,csv}, fid_lambda.png, fid_curves.png, curves.png, runs/*/samples.png and arms/ (%.0f s)")
      :format(P.out, C.elapsed(t0)))
