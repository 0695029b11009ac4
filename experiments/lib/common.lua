-- experiments/lib/common.lua — what the image experiments share: the three
-- profiles (paper | cpu | smoke), dataset / net / ratio-estimator specs for
-- each, teacher training (or loading), image metrics and report writing.
--
--   local C = require "lib.common"      -- found next to the script (experiments/)
--   local P = C.profile(args, "divergence_sweep")
--
-- Profiles (docs/experiments.md has the measured and estimated run times):
--   paper  CIFAR-10 (`data=DIR` required: the directory with data_batch_1..5.bin),
--          EDM's DDPM++ UNet (preset cifar10-ddpmpp), the papers' batch sizes
--          and learning rates; needs a GPU and days, not a CPU.
--   cpu    Fashion-MNIST padded to 32×32, a UNet of 16 channels (multipliers
--          1,2,2, attention at 16×16), budgets sized for about an hour per
--          script on 2 cores.
--   smoke  Fashion-MNIST resized to 8×8, a two-level 8-channel UNet, a few
--          dozen steps, 64 samples per metric: the whole pipeline in about a
--          minute (what the tests run).
local wb = require "wb"

local C = {}

-- ---- profiles -----------------------------------------------------------------
-- Per-step costs measured on 2 CPU cores with the cpu profile's UNet at 32×32
-- (Release build): teacher DSM step (batch 32) ≈ 0.77 s; distillation step at
-- batch 16 ≈ 1.0–1.6 s (score-free with the classifier at the low end,
-- score-based with a fake score and the gan-head at the high end); Heun
-- sampling of the teacher (35 evaluations) ≈ 0.45 s per image; the metrics'
-- feature classifier, 500 steps ≈ 55 s (once: it is cached).
-- With the smoke profile (8×8, 8 channels, batch 16): teacher ≈ 0.011 s/step,
-- distillation 0.03–0.05 s/step, 64 Heun samples ≈ 0.4 s.
C.PROFILES = {
  paper = {
    data = { kind = "cifar10", flip = true },
    -- EDM train.py --arch=ddpmpp --cond=0 for CIFAR-10: dropout 0.13
    net = { "unet", preset = "cifar10-ddpmpp", dropout = 0.13 },
    resolution = 32,
    teacher = { steps = 390000, batch = 512, lr = 1e-3, ema = 0.9999 }, -- 200 Mimg at batch 512
    metrics = { n = 50000, classifier_steps = 1500 },
    sample_steps = 18,
    seeds = 1, -- GPU days per seed: seeds=3 when the budget allows
  },
  cpu = {
    data = { kind = "fashion-mnist", pad_to = 32 },
    net = { "unet", channels = 16, multipliers = { 1, 2, 2 }, attn_resolutions = { 16 } },
    resolution = 32,
    teacher = { steps = 1200, batch = 32, lr = 2e-3, ema = 0.995 },
    metrics = { n = 256, classifier_steps = 500 },
    seeds = 3,
  },
  smoke = {
    data = { kind = "fashion-mnist", resize_to = 8 },
    -- two levels (8, 4): features enc8, enc4, mid; no attention
    net = { "unet", channels = 8, multipliers = { 1, 2 }, attn_resolutions = { 1 } },
    resolution = 8, levels = 2,
    teacher = { steps = 150, batch = 16, lr = 2e-3, ema = 0.99 },
    metrics = { n = 64, classifier_steps = 30 },
    seeds = 1,
  },
}

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = type(v) == "table" and copy(v) or v end
  return out
end
C.copy = copy

--- t with the keys of each further table merged over it (a new table).
function C.with(t, ...)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  for _, extra in ipairs{ ... } do for k, v in pairs(extra) do out[k] = v end end
  return out
end

--- The profile named by args.profile, checked, with args.data folded in.
-- `script` names the experiment (for messages and the default output folder).
function C.profile(args, script)
  local P = C.PROFILES[args.profile]
  if P == nil then
    error(("%s: profile '%s' is not one of paper, cpu, smoke"):format(script, tostring(args.profile)), 2)
  end
  P = copy(P)
  P.name = args.profile
  if args.profile == "paper" then
    if args.data == nil or args.data == "" then
      error(("%s: profile=paper needs the CIFAR-10 binary directory: data=DIR, the folder holding " ..
             "data_batch_1.bin … data_batch_5.bin and test_batch.bin (the 'CIFAR-10 binary version' " ..
             "from https://www.cs.toronto.edu/~kriz/cifar.html); the cpu and smoke profiles use the " ..
             "bundled Fashion-MNIST instead"):format(script), 2)
    end
    P.data.path = args.data
  elseif args.data ~= nil and args.data ~= "" then
    P.data.path = args.data -- another Fashion-MNIST directory
  end
  P.out = (args.out ~= nil and args.out ~= "") and args.out or ("results/%s-%s"):format(script, args.profile)
  P.cache = (args.cache ~= nil and args.cache ~= "") and args.cache or "results/cache"
  P.quiet = args.quiet or false
  P.inception = (args.inception ~= nil and args.inception ~= "") and args.inception or nil
  if (args.metrics_n or 0) > 0 then P.metrics.n = args.metrics_n end
  -- seeds=N (0: the profile's) from seed= on: the students' seeds, and the
  -- draws of their metrics; every row of seed s shares the teacher and data
  -- (a bad seeds= is C.check_args's to report, with the script's name)
  if (args.seeds or 0) > 0 and args.seeds == math.floor(args.seeds) and args.seeds <= 1000 then P.seeds = args.seeds end
  P.seed_list = wb.stats.seeds(math.tointeger(args.seed or 0) or 0, P.seeds)
  return P
end

-- ---- seeds ----------------------------------------------------------------------
--- A run folder name for seed s: the first seed keeps the one-seed name
-- (runs/kl, teacher_dir=... layouts stay valid), the others get "_s<seed>".
function C.seeded_name(P, name, seed)
  if seed == nil or seed == P.seed_list[1] then return name end
  return ("%s_s%d"):format(name, seed)
end

--- The metrics' sample seed for seed s (the first seed: 1, as with one seed).
function C.sample_seed(P, seed)
  return 1 + 10 * ((seed or P.seed_list[1]) - P.seed_list[1])
end

--- A group's table row (wb.stats.groups): the seeds' rows merged — numbers
-- become one value per seed (mean ± std in the table), "classes" the count
-- covered per seed, "collapsed" how many seeds collapsed ("1/3"); the
-- label keys nfe and lambda stay as they are.
function C.seed_row(g)
  local per_seed = {}
  for i, res in ipairs(g.results) do per_seed[i] = res.row end
  if #per_seed == 1 then return per_seed[1] end
  local row = wb.stats.merge(per_seed, { "nfe", "lambda" })
  if per_seed[1].classes_covered ~= nil then row.classes = row.classes_covered end
  if per_seed[1].collapsed ~= nil then
    local k = 0
    for _, r in ipairs(per_seed) do if r.collapsed == "yes" then k = k + 1 end end
    row.collapsed = ("%d/%d"):format(k, #per_seed)
  end
  return row
end

--- The band (mean, seeds' min and max) of a group's per-seed curves, each
-- result[key] a {name, x, y} or nil; nil when no seed has one.
function C.seed_band(g, key, name)
  local curves = {}
  for _, res in ipairs(g.results) do if res[key] then curves[#curves + 1] = res[key] end end
  if #curves == 0 then return nil end
  if #curves == 1 then return curves[1] end
  return wb.stats.band(name or curves[1].name, curves)
end

--- The baseline row of a study's table: args.baseline when it names a row
-- (by its first column), else nil with a warning (no markers).
function C.baseline(script, rows, key, wanted)
  if wanted == nil or wanted == "" then return nil end
  for _, r in ipairs(rows) do if r[key] == wanted then return wanted end end
  io.stderr:write(("%s: warning: baseline = %s is not a row; no difference markers\n"):format(script, wanted))
  return nil
end

-- ---- arguments, checked before any work -----------------------------------------
-- A typo on the command line must cost seconds, not a teacher run (issue 10,
-- defect 7): every script checks its arguments right after wb.args, before it
-- loads data or trains, and each message names the script, the key and the
-- value ("lambda_sweep: steps = -5: want an integer >= 0 (0: the profile's)").

local function want_text(r)
  if r.choices then return "one of " .. table.concat(r.choices, ", ") end
  if r.file then return "a readable file" end
  if r.dir then return "an existing folder" end
  local kind = r.int and "an integer" or "a number"
  local parts = {}
  if r.gt ~= nil then parts[#parts + 1] = ("> %s"):format(r.gt) end
  if r.min ~= nil then parts[#parts + 1] = (">= %s"):format(r.min) end
  if r.max ~= nil then parts[#parts + 1] = ("<= %s"):format(r.max) end
  local text = kind .. (#parts > 0 and " " .. table.concat(parts, " and ") or "")
  if r.unset ~= nil then text = ("%s, or %s"):format(text, r.unset) end
  if r.note then text = ("%s (%s)"):format(text, r.note) end
  return text
end

-- A value as typed: "0" and "50", not Lua's "0.0" and "50.0" for a float.
local function shown(v)
  return math.type(v) == "float" and ("%.14g"):format(v) or tostring(v)
end

-- A folder: "DIR/." opens; a file: it opens and is not a folder (read(0)
-- fails on one) nor empty.
local function readable(path, as_dir)
  local f = io.open(as_dir and path .. "/." or path, "rb")
  if not f then return false end
  local ok = as_dir or f:read(0) ~= nil
  f:close()
  return ok
end

--- Checks args against rules, an array of {key, [int | number | choices |
-- file | dir], min, max, gt, unset, note}: integers / numbers in range (gt:
-- strictly above; unset: one more allowed value, "the profile's"; note:
-- said in the message), a string among choices, "" or a readable file, ""
-- or an existing folder. A key absent from args is skipped. Errors name
-- script, key and value.
function C.check_args(script, args, rules)
  for _, r in ipairs(rules) do
    local key = r[1]
    local v = args[key]
    local ok = true
    if v == nil then
      ok = true
    elseif r.choices then
      ok = false
      for _, c in ipairs(r.choices) do if v == c then ok = true end end
    elseif r.file or r.dir then
      ok = v == "" or readable(v, r.dir)
    elseif r.unset ~= nil and v == r.unset then
      ok = true
    else
      ok = type(v) == "number" and v == v and (not r.int or math.type(v) == "integer" or v == math.floor(v)) and
           (r.min == nil or v >= r.min) and (r.max == nil or v <= r.max) and (r.gt == nil or v > r.gt)
    end
    if not ok then error(("%s: %s = %s: want %s"):format(script, key, shown(v), want_text(r)), 0) end
  end
end

--- The arguments every image study shares (after C.profile checked the
-- profile name): budgets, metrics, files.
C.COMMON_RULES = {
  { "steps", int = true, min = 0, note = "0: the profile's" },
  { "batch", int = true, min = 0, max = 4096, note = "0: the profile's" },
  { "teacher_steps", int = true, min = 0, unset = -1, note = "-1: the profile's" },
  { "metrics_n", int = true, min = 4, unset = 0, note = "0: the profile's" },
  { "seed", int = true, min = 0 },
  { "seeds", int = true, min = 0, max = 1000, note = "0: the profile's: cpu 3, smoke and paper 1" },
  { "inception", file = true },
  { "teacher_init", file = true },
  { "data", dir = true },
  { "data100", dir = true },
}

--- Every name in `names` must be a loaded divergence (what the script's
-- `key` argument, or the script itself, asks for).
function C.require_divergences(script, key, names)
  local loaded, known = {}, wb.divergences()
  for _, n in ipairs(known) do loaded[n] = true end
  for _, n in ipairs(names) do
    if not loaded[n] then
      error(("%s: %s%s'%s' is not a loaded divergence (loaded: %s)"):format(script, key or "", key and " = " or "",
            n, table.concat(known, ", ")), 0)
    end
  end
end

--- Divergence spec `spec` ({"sba", lambda = x}) as its plugin checks it
-- (parameter bounds, choices), without training: the plugin's weights at
-- one logit. An error names script and key.
function C.check_spec(script, key, value, spec)
  local ok, err = pcall(wb.divergence_weights, spec, { 0 })
  if not ok then
    local why = tostring(err):gsub("^wb%.divergence_weights: ", "")
    error(("%s: %s = %s: %s"):format(script, key, shown(value), why), 0)
  end
end

--- An image Dataset of the profile, with extra wb.data.images keys (include, …).
function C.dataset(P, extra)
  return wb.data.images(C.with(P.data, extra or {}))
end

--- The profile's backbone spec (a fresh table: callers may add keys).
function C.net(P, extra)
  return C.with(copy(P.net), extra or {})
end

--- The score-free paper's discriminator: the encoder half of the same UNet
-- with a scalar logit (the classifier averages it over positions).
function C.classifier(P)
  return { "classifier", net = C.net(P, { encoder_only = true }) }
end

--- f-distill's discriminator: a two-layer head on the teacher's encoder
-- features at the three finest resolutions (enc32,enc16,enc8 on CIFAR-10).
function C.gan_head(P)
  local r, names = P.resolution, {}
  for l = 0, (P.levels or 3) - 1 do names[#names + 1] = ("enc%d"):format(r >> l) end
  return { "gan-head", features = "teacher", feature = table.concat(names, ",") }
end

--- Trains a teacher on `data` with the profile's budget (opts: run, seed,
-- single_sigma, steps, init = checkpoint path to start from; init with
-- steps = 0 only loads it).
function C.teacher(P, data, opts)
  opts = opts or {}
  local t = C.with({ data = data, net = C.net(P), quiet = P.quiet, log_every = 50 }, P.teacher, opts)
  if t.init == "" then t.init = nil end
  return wb.teacher(t)
end

--- wb.image_metrics with the profile's settings; x: Samples, Student or Teacher.
function C.metrics(P, x, data, sample_seed)
  if wb.image_metrics == nil then
    error("wb.image_metrics is missing from this build of the workbench (rebuild: it computes FID, " ..
          "precision/recall, IS and class coverage for image sets)", 2)
  end
  return wb.image_metrics(x, data, { n = P.metrics.n, cache = P.cache,
                                     classifier_steps = P.metrics.classifier_steps, seed = 0,
                                     sample_seed = sample_seed or 0, quiet = P.quiet,
                                     inception = P.inception })
end

--- Trains (or loads from P.cache) the metrics' feature classifier and the
-- reference statistics, by scoring n images of the set itself: the image
-- studies' wb.arms `prepare`, run once before the arms, so that N workers
-- (or array tasks) load the classifier from the cache instead of each
-- training it. The scores are thrown away; the numbers of every later
-- C.metrics call are the same with or without it.
function C.prepare_metrics(P, data)
  local x = data:sample(P.metrics.n, 0)
  wb.image_metrics(x, data, { n = P.metrics.n, cache = P.cache, classifier_steps = P.metrics.classifier_steps,
                              seed = 0, quiet = P.quiet })
end

--- A table row from image metrics: fid, precision, recall, is, classes, collapsed.
function C.metric_row(row, m)
  row.fid, row.precision, row.recall = m.fid, m.precision, m.recall
  row.fid_inception = m.fid_inception
  row.is, row.is_std = m.is, m.is_std
  row.classes = ("%d/%d"):format(m.classes_covered, m.n_classes)
  row.classes_covered = m.classes_covered
  row.entropy = m.entropy
  row.collapsed = m.collapsed and "yes" or "no"
  return row
end

-- The metric columns every table shares.
C.METRIC_COLUMNS = {
  { key = "fid", label = "FID", format = "%.2f" },
  { key = "precision", label = "precision", format = "%.3f" },
  { key = "recall", label = "recall", format = "%.3f" },
  { key = "is", label = "IS", format = "%.2f" },
  { key = "classes", label = "classes" },
  { key = "collapsed", label = "collapsed" },
}

--- Writes out/table.{md,tex,csv}, prints it, and returns the Table. With
-- Inception weights (inception=PATH) an "FID (Inception)" column follows FID.
function C.write_table(P, rows, columns, best, name, baseline)
  if P.inception then
    local with = {}
    for _, c in ipairs(columns) do
      with[#with + 1] = c
      if c.key == "fid" then with[#with + 1] = { key = "fid_inception", label = "FID (Inception)", format = "%.2f" } end
    end
    columns = with
    best = C.with(best or {}, { fid_inception = "min" })
  end
  for _, c in ipairs(columns) do if c.key == "seconds" then c.test = false end end
  local tab = wb.table(rows, columns, { best = best or {}, baseline = baseline })
  print()
  tab:print()
  tab:write(P.out .. "/" .. (name or "table"), { "md", "tex", "csv" })
  return tab
end

--- A bar item for C.bar_plot from a table cell: a number, or one per seed
-- (the mean and its 95 % interval).
function C.bar_item(name, v, group)
  if type(v) ~= "table" then return { name = name, value = v, group = group } end
  local finite = true
  for _, x in ipairs(v) do if x ~= x or x == math.huge or x == -math.huge then finite = false end end
  if not finite then
    local s = 0
    for _, x in ipairs(v) do s = s + x end
    return { name = name, value = s / #v, group = group }
  end
  local s = wb.stats.summary(v)
  return { name = name, value = s.mean, lo = s.n > 1 and s.lo or nil, hi = s.n > 1 and s.hi or nil, group = group }
end

--- Every `every` steps for a run of `steps` (about 20 log points, at least 1).
function C.log_every(steps)
  return math.max(1, steps // 20)
end

--- A curve {name, x, y} from a Student's log: key vs images seen (step·batch),
-- NaN points dropped; nil when nothing was logged.
function C.curve(name, student, key, batch)
  local log = student.log
  local x, y = {}, {}
  for i, s in ipairs(log.step or {}) do
    local v = log[key] and log[key][i]
    if v ~= nil and v == v then x[#x + 1], y[#y + 1] = s * batch, v end
  end
  if #x == 0 then return nil end
  return { name = name, x = x, y = y }
end

--- FID during a student's training, every `eval_every` generator updates
-- (0: none): the options for wb.distill (eval_every, on_eval) and the curve
-- {x = images seen, y = FID} they fill. The evaluations draw their own
-- samples (C.metrics with the seed's draws), so the trained weights and the
-- final row are the same with or without them.
function C.fid_evals(P, data, seed, batch, eval_every)
  local curve = { x = {}, y = {} }
  if eval_every <= 0 then return {}, curve end
  local opts = {
    eval_every = eval_every,
    on_eval = function(st, step)
      local fid = C.metrics(P, st, data, C.sample_seed(P, seed)).fid
      curve.x[#curve.x + 1], curve.y[#curve.y + 1] = step * batch, fid
      return fid
    end,
  }
  return opts, curve
end

--- What a student's training did to its weights and its discriminator, the
-- measured reasons behind a row (docs/results/orderings.md): the ratio
-- estimator's accuracy (real vs student) averaged over the last quarter of
-- the run, and the batch-mean weight (mean_w_s, or mean_w_l for the
-- score-free family) over the run's metrics.jsonl lines — its mean and its
-- largest value. NaN where the run logged none.
function C.train_diagnostics(student, run_dir, steps, w_key)
  local log, acc, n_acc = student.log, 0, 0
  for i, st in ipairs(log.step or {}) do
    local a = log.ratio_acc and log.ratio_acc[i]
    if a ~= nil and a == a and st > 0.75 * steps then acc, n_acc = acc + a, n_acc + 1 end
  end
  local json = require "wb.json"
  local sum, n, max = 0, 0, -math.huge
  local f = io.open(run_dir .. "/metrics.jsonl")
  if f then
    for line in f:lines() do
      local ok, rec = pcall(json.decode, line)
      local v = ok and type(rec) == "table" and rec[w_key]
      if type(v) == "number" and v == v then sum, n, max = sum + v, n + 1, math.max(max, v) end
    end
    f:close()
  end
  return { disc_acc = n_acc > 0 and acc / n_acc or 0 / 0, w_mean = n > 0 and sum / n or 0 / 0,
           w_max = n > 0 and max or 0 / 0 }
end

--- The columns of C.train_diagnostics (descriptive: no difference markers).
function C.diagnostic_columns(w_label)
  return { { key = "disc_acc", label = "disc. acc (last 1/4)", format = "%.3f", test = false },
           { key = "w_mean", label = "mean " .. w_label, format = "%.3g", test = false },
           { key = "w_max", label = "max " .. w_label, format = "%.3g", test = false } }
end

--- A bar figure from wb.plot_lines: item i is a vertical segment from 0 to
-- its value at x = i (NaN separators break the line between bars; with
-- item.lo / item.hi, an error bar over it), one series
-- per item.group (default `ylabel`), plus horizontal reference lines
-- refs = {{name, value}, ...}; non-finite values are left out. The x-axis
-- label lists the items ("1=kl  2=rkl ...").
function C.bar_plot(path, title, ylabel, items, refs)
  local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end
  local groups, order = {}, {}
  for i, it in ipairs(items) do
    if finite(it.value) then
      local g = it.group or ylabel
      if groups[g] == nil then groups[g] = { name = g, x = {}, y = {} }; order[#order + 1] = g end
      local s = groups[g]
      for _, p in ipairs{ { i, 0 }, { i, it.value }, { 0 / 0, 0 / 0 } } do
        s.x[#s.x + 1], s.y[#s.y + 1] = p[1], p[2]
      end
    end
  end
  local series = {}
  for _, g in ipairs(order) do series[#series + 1] = groups[g] end
  -- items with seeds: their interval as an error bar at the bar's top
  local bar = { name = "95 % interval", x = {}, y = {}, lo = {}, hi = {} }
  for i, it in ipairs(items) do
    if finite(it.value) and it.lo and finite(it.lo) and finite(it.hi) then
      for _, p in ipairs{ { i, it.value, it.lo, it.hi }, { 0 / 0, 0 / 0, 0 / 0, 0 / 0 } } do
        bar.x[#bar.x + 1], bar.y[#bar.y + 1], bar.lo[#bar.lo + 1], bar.hi[#bar.hi + 1] = p[1], p[2], p[3], p[4]
      end
    end
  end
  if #bar.x > 0 then series[#series + 1] = bar end
  for _, r in ipairs(refs or {}) do
    if finite(r.value) then
      series[#series + 1] = { name = r.name, x = { 0.5, #items + 0.5 }, y = { r.value, r.value } }
    end
  end
  if #series == 0 then return end
  local labels = {}
  for i, it in ipairs(items) do labels[#labels + 1] = ("%d=%s"):format(i, it.name) end
  wb.plot_lines(path, { title = title, ylabel = ylabel, series = series,
                        xlabel = table.concat(labels, "  ") })
end

--- Wall-clock seconds since `t0` (os.time granularity).
function C.elapsed(t0) return os.difftime(os.time(), t0) end

return C
