-- experiments/quickstart.lua — the README's main job: every divergence the
-- workbench has loaded, side by side, on a 2-D imbalanced Gaussian mixture,
-- over several seeds, with the rows that differ from the baseline marked.
--
--   data     8 Gaussians on a ring, weights 30 % … 5 % (ring8-imbalanced)
--   teacher  EDM-preconditioned MLP trained with denoising score matching
--            (once, seed `seed`); its 18-step Heun sampler (35 evaluations)
--            is the reference row
--   students one-step generators G(z) = D(σ_init·z, σ_init) initialised from
--            the teacher, one per divergence plugin and seed, all with the
--            same budget and the same ratio estimator (a σ-conditioned MLP
--            classifier); the untrained initialisation is a row too
--   seeds    seeds=3: seeds seed, seed+1, seed+2. Seed s is the students'
--            seed (generator noise, minibatches, fake-score and ratio
--            estimator streams) and draws the evaluation samples; every row
--            of seed s shares the teacher, the data and the evaluation
--            reference, so rows are compared pairwise across seeds
--   reports  modes covered, mode-weight TV, share of samples within 3 std of
--            a mode, MMD to data: mean ± std over the seeds, 95 % intervals,
--            and "†" where a row differs from `baseline` (paired t-test over
--            seeds, p < 0.05); Markdown, LaTeX and CSV tables; a grid of
--            scatter plots (first seed); MMD curves (mean over seeds, band
--            from the seeds' min to max); the weight functions w_s, w_l
--   arms     teacher row, initialisation and each (student, seed) are
--            wb.arms arms: the teacher trains once, then the arms run on one
--            worker process per core (jobs=1: one after the other in this
--            process), each result in OUT/arms/<arm>.json; the report is
--            built from those, the same table in every mode (the CPU's
--            deterministic mode makes it independent of the thread count)
--
-- Run:   build/workbench run experiments/quickstart.lua [key=value ...]
-- e.g.   build/workbench run experiments/quickstart.lua steps=3000 out=results/long
--        build/workbench run experiments/quickstart.lua seeds=5 baseline=rkl
--        build/workbench run experiments/quickstart.lua --jobs 1            (one process)
--        build/workbench run experiments/quickstart.lua --slurm "--time=1:00:00"
--        build/workbench table experiments/quickstart.lua out=results/long  (the report again)
--        build/workbench run experiments/quickstart.lua backend=cuda   (on a GPU)
local wb = require "wb"

local args = wb.args{
  preset = "ring8-imbalanced",
  teacher_steps = 3000,
  steps = 1000,         -- generator updates per divergence
  batch = 256,
  lr = 1e-3,            -- generator
  lr_ratio = 3e-3,      -- ratio estimator (it must keep up with the generator)
  ratio_updates = 2,    -- ratio-estimator steps per generator step
  time_weight = "dmd",  -- one weighting for every objective, so they compare
  seed = 0,             -- the teacher's seed and the first student seed
  seeds = 3,            -- student seeds: seed, seed+1, ...
  baseline = "kl",      -- the row the others are tested against ("": none)
  n_eval = 2000,        -- samples per evaluation
  eval_every = 100,     -- MMD curve resolution (0: no curves)
  divergences = "",     -- comma-separated subset; empty = every loaded divergence
  -- SBA's λ. The Di-Bregman paper's best CIFAR values (3, 5, 10) make the
  -- weight e^{-λ l} so extreme on this sharp 2-D mixture (the classifier is
  -- nearly certain at small σ) that a handful of samples carry the whole
  -- update and the student collapses (λ = 2 already does; try sba_lambda=5).
  -- λ = 0.5 sits between kl (λ = 0) and ls (λ = 1).
  sba_lambda = 0.5,
  out = "results/quickstart",
  quiet = false,
  backend = "",         -- cpu | cuda | cuda-emu | auto; empty: $WB_BACKEND, else cpu
  deterministic = true, -- CPU results independent of the thread count (false: $WB_DETERMINISTIC decides)
}
local backend = args.backend ~= "" and args.backend or nil
-- arguments checked before any work (a typo must not cost a teacher run)
local names = wb.select_divergences(args.divergences)
for _, k in ipairs{ "teacher_steps", "steps", "ratio_updates" } do
  if args[k] < 0 or args[k] ~= math.floor(args[k]) then error(("%s = %s: want an integer >= 0"):format(k, args[k]), 0) end
end
for _, k in ipairs{ "batch", "n_eval" } do
  if args[k] < 1 or args[k] ~= math.floor(args[k]) then error(("%s = %s: want an integer >= 1"):format(k, args[k]), 0) end
end
if args.eval_every < 0 then error(("eval_every = %s: want >= 0"):format(args.eval_every), 0) end
if args.seeds < 1 or args.seeds ~= math.floor(args.seeds) then error(("seeds = %s: want an integer >= 1"):format(args.seeds), 0) end
if args.seed < 0 or args.seed ~= math.floor(args.seed) then error(("seed = %s: want an integer >= 0"):format(args.seed), 0) end
local seeds = wb.stats.seeds(args.seed, args.seeds)
-- Results that do not depend on the thread count (README, "Results and the
-- thread count"): the arms run on workers of one thread each by default
-- (jobs = auto below), and the table must be the one a single process of
-- two threads gives.
if args.deterministic then wb.deterministic(true) end

local t_start = os.clock()
wb.mkdir(args.out)
-- seed s's evaluation draws (seed 0: the draws the one-seed quickstart always used)
local function eval_opts(seed)
  return { n = args.n_eval, reference_n = args.n_eval, seed = 1 + 10 * seed, sample_seed = 2 + 10 * seed }
end
local function sba_spec() return { "sba", lambda = args.sba_lambda } end

-- the arms: the teacher's row, the untrained initialisation, one student per
-- divergence, each once per seed
local arms = { { name = "teacher", kind = "teacher" }, { name = "initialisation", kind = "init" } }
for _, name in ipairs(names) do arms[#arms + 1] = { name = name, kind = "student", divergence = name } end
arms = wb.stats.seed_arms(arms, seeds)

-- on a CPU one worker per core (at most one per arm); on a GPU one process
-- (workers would each hold a context of the one device); jobs=N overrides
local backend_name = backend or os.getenv("WB_BACKEND") or ""
local on_cpu = backend_name == "" or backend_name == "cpu"

local results = wb.arms{
  name = "quickstart", out = args.out, arms = arms, report_args = { "baseline" }, -- another baseline re-reads the results
  jobs = on_cpu and "auto" or 1,
  -- 1. the teacher (trained once; every worker loads it from runs/teacher)
  setup = function()
    local data = wb.data.gmm2d{ preset = args.preset }
    local teacher = wb.teacher{
      data = data, net = { "mlp", widths = { 128, 128, 128 } },
      steps = args.teacher_steps, batch = args.batch, seed = args.seed,
      run = args.out .. "/runs/teacher", quiet = args.quiet, backend = backend,
    }
    local common = {
      teacher = teacher, data = data, batch = args.batch, seed = args.seed,
      lr = args.lr, lr_ratio = args.lr_ratio, ratio_updates = args.ratio_updates,
      time_weight = args.time_weight,
      ratio = { "classifier", net = { "mlp", widths = { 128, 128, 128 } } },
      eval_samples = args.eval_every > 0 and 500 or 0, log_every = args.eval_every,
      quiet = args.quiet, backend = backend,
    }
    return { data = data, teacher = teacher, common = common }
  end,
  -- 2. one arm: metrics, samples for the scatter grid, the MMD curve
  run = function(arm, s)
    local function with(extra)
      local t = {}
      for k, v in pairs(s.common) do t[k] = v end
      for k, v in pairs(extra) do t[k] = v end
      return t
    end
    local ev = eval_opts(arm.seed)
    if arm.kind == "teacher" then
      return { metrics = wb.evaluate(s.teacher, s.data, ev), seconds = s.teacher.train_seconds,
               samples = s.teacher:sample(args.n_eval, { steps = 18, seed = ev.sample_seed }):totable() }
    elseif arm.kind == "init" then -- the untrained one-step generator: what every student starts from
      local init = wb.distill(with{ divergence = "kl", steps = 0, eval_samples = 0, log_every = 0, quiet = true,
                                    seed = arm.seed })
      return { metrics = wb.evaluate(init, s.data, ev), seconds = 0 }
    end
    local spec = arm.divergence == "sba" and sba_spec() or arm.divergence
    local student = wb.distill(with{ divergence = spec, steps = args.steps, seed = arm.seed,
                                     run = args.out .. "/runs/" .. arm.name })
    return { metrics = wb.evaluate(student, s.data, ev), seconds = student.train_seconds,
             samples = student:sample(args.n_eval, { seed = ev.sample_seed }):totable(),
             curve = { step = student.log.step, mmd = student.log.mmd } }
  end,
}

-- 3. the report (from the arms' results: the same in every mode, and for
-- `workbench table experiments/quickstart.lua ...`) ------------------------------
local family = wb.divergence_families()
local score_free = wb.score_free_divergences() -- the plugins' own flag, not their family's name
local data = wb.data.gmm2d{ preset = args.preset }
local reference = data:sample(args.n_eval, 1)
local rows, panels, curves = {}, {}, {}
local n_modes

-- one row per arm: the seeds' numbers side by side (wb.stats.merge: arrays
-- that wb.table shows as mean ± std)
local function add_row(name, kind, nfe, results)
  local per_seed = {}
  for i, res in ipairs(results) do
    local m = res.metrics
    n_modes = m.n_modes
    per_seed[i] = { modes = m.modes, tv = m.tv, quality = m.quality, mmd = m.mmd, seconds = res.seconds }
  end
  local row = wb.stats.merge(per_seed)
  row.method, row.family, row.nfe = name, kind, nfe -- labels: not per seed
  rows[#rows + 1] = row
end

for _, g in ipairs(wb.stats.groups(results)) do
  local arm, first = g.arm, g.results[1]
  if arm.kind == "teacher" then
    add_row("teacher (Heun)", "EDM", 35, g.results)
    panels[#panels + 1] = { title = "teacher, 35 NFE", reference = reference, samples = wb.samples(first.samples) }
  elseif arm.kind == "init" then
    add_row("initialisation", "-", 1, g.results)
  else
    local name = arm.divergence
    local label = name == "sba" and ("sba (lambda=%g)"):format(args.sba_lambda) or name
    add_row(label, family[name] or "?", 1, g.results)
    panels[#panels + 1] = { title = label, reference = reference, samples = wb.samples(first.samples) }
    if #first.curve.step > 0 then
      local per_seed = {}
      for i, res in ipairs(g.results) do per_seed[i] = { x = res.curve.step, y = res.curve.mmd } end
      curves[#curves + 1] = wb.stats.band(name, per_seed)
    end
  end
end

local columns = {
  { key = "method", label = "method" }, { key = "family", label = "family" },
  { key = "nfe", label = "NFE", format = "%d" },
  { key = "modes", label = ("modes (of %d)"):format(n_modes or 0), format = #seeds > 1 and "%.1f" or "%d" },
  { key = "tv", label = "mode TV", format = "%.3f" }, { key = "quality", label = "within 3 std", format = "%.3f" },
  { key = "mmd", label = "MMD", format = "%.4f" }, { key = "seconds", label = "train s", format = "%.1f", test = false },
}
local baseline
if args.baseline ~= "" then
  for _, r in ipairs(rows) do if r.method == args.baseline then baseline = args.baseline end end
  if baseline == nil then
    io.stderr:write(("quickstart: warning: baseline = %s is not a row; no difference markers\n"):format(args.baseline))
  end
end
local tab = wb.table(rows, columns, { best = { mmd = "min", tv = "min", quality = "max" }, baseline = baseline })
print()
tab:print()
tab:write(args.out .. "/table", { "md", "tex", "csv" })

wb.scatter_grid(args.out .. "/samples.png", panels, { columns = 4 })
if #curves > 0 then
  local title = #seeds > 1 and ("MMD to data during distillation (EMA generator; mean and range of %d seeds)"):format(#seeds)
                or "MMD to data during distillation (EMA generator)"
  wb.plot_lines(args.out .. "/mmd_curves.png", { title = title,
    xlabel = "generator updates", ylabel = "MMD", log_y = true, series = curves })
end

-- the weight functions of every divergence, as researchers plot them
local logits = {}
for i = 0, 200 do logits[#logits + 1] = -10 + i * 0.1 end
local weight_series = {}
for _, name in ipairs(names) do
  local ws, wl = wb.divergence_weights(name == "sba" and sba_spec() or name, logits)
  local w, label = ws, name .. " w_s"
  if score_free[name] then w, label = wl, name .. " w_l" end
  weight_series[#weight_series + 1] = { name = label, x = logits, y = w }
end
wb.plot_lines(args.out .. "/weights.png", { title = "weight functions w(l), l = log p/q",
  xlabel = "logit l", ylabel = "weight", log_y = true, series = weight_series })

print(("\nwrote %s/table.{md,tex,csv}, samples.png, mmd_curves.png, weights.png, runs/ and arms/ (%.0f s CPU here)")
      :format(args.out, os.clock() - t_start))
