-- experiments/orderings_2d.lua — do the papers' orderings hold on 2-D data,
-- over seeds? The quickstart's setting (ring8-imbalanced, the same EDM MLP
-- teacher, budget and optimisers), one study per run:
--
--   study=lambda     Di-Bregman's SBA, w_s = e^{−λ l}, λ ∈ lambdas against
--                    reverse KL (rkl, the baseline row); ratio=classifier (a
--                    σ-conditioned MLP, the quickstart's) or ratio=fake-encoder
--                    (SiDA's: the fake score's encoder, trained with its DSM);
--                    claim: λ ∈ {3, 5, 10} better than rkl, λ = −1 worse
--   normalize_batch=true, logit_clamp=C: what f-distill's normalisation (the
--                    weight over its batch mean) or a clamped logit changes
--   study=scorefree  DiKL, DiJS, DiRM against each other and against the
--                    score-based rkl, fkl, js, every row with the score-free
--                    paper's weighting w = σ² at σ_fix = sf_sigma (2.5);
--                    baseline dijs; claim: DiJS < DiKL < DiRM
--
-- Every row runs once per seed (seeds=3 from seed=), all seeds sharing the
-- teacher (trained once, seed `seed`); rows of one seed share the data and
-- the evaluation draws, so rows are compared pairwise (paired t-test over
-- seeds, p < 0.05, "†"). Besides the quickstart's metrics each row reports
-- what the reasons need: the discriminator's accuracy over the last quarter
-- of training, the mean weight E[w_s] (or E[w_l] for score-free rows) over
-- training and its largest logged value, and the MMD at the finest of the
-- five bandwidths when the build reports it.
--
-- Run:   build/workbench run experiments/orderings_2d.lua study=lambda [ratio=fake-encoder] [key=value ...]
--        build/workbench run experiments/orderings_2d.lua study=scorefree
-- Writes OUT/table.{md,tex,csv}, OUT/mmd_curves.png (mean and range over
-- seeds: have the rows stopped moving?), runs/ and arms/.
local wb = require "wb"
local C = require "lib.common" -- C.train_diagnostics: discriminator accuracy and logged weights
local T = require "lib.toy2d"  -- the quickstart's 2-D setting: its defaults, teacher, student options

local args = wb.args(T.args{
  study = "lambda",
  ratio = "classifier", -- classifier | fake-encoder (study=lambda)
  lambdas = "-1,0.5,1,3,5,10",
  sf_sigma = 2.5,
  normalize_batch = false, -- f-distill's weight / its batch mean (what normalisation changes)
  logit_clamp = 0.0,    -- > 0: the logit clamped to ±logit_clamp before the weights
  out = "",
})
local function want(ok, key, what) if not ok then error(("orderings_2d: %s = %s: want %s"):format(key, tostring(args[key]), what), 0) end end
want(args.study == "lambda" or args.study == "scorefree", "study", "lambda or scorefree")
want(args.ratio == "classifier" or args.ratio == "fake-encoder", "ratio", "classifier or fake-encoder")
want(args.sf_sigma > 0, "sf_sigma", "a number > 0")
local lambdas = {}
for v in args.lambdas:gmatch("[^,%s]+") do
  local x = tonumber(v)
  want(x ~= nil, "lambdas", "comma-separated numbers")
  lambdas[#lambdas + 1] = x
end
local seeds = T.check(args, "orderings_2d")
local out = args.out ~= "" and args.out or ("results/orderings_2d-%s%s"):format(args.study,
  args.study == "lambda" and "-" .. args.ratio or "")
wb.mkdir(out)

local ratio_spec = args.ratio == "classifier" and T.classifier() or { "fake-encoder" }
local rows_spec = {}
if args.study == "lambda" then
  rows_spec[1] = { name = "rkl", label = "rkl (reverse KL)", divergence = "rkl" }
  for _, l in ipairs(lambdas) do
    rows_spec[#rows_spec + 1] = { name = ("sba_%g"):format(l), label = ("sba (lambda=%g)"):format(l),
                                  divergence = "sba", lambda = l }
  end
else
  for _, n in ipairs{ "dijs", "dikl", "dirm", "rkl", "fkl", "js" } do
    rows_spec[#rows_spec + 1] = { name = n, label = n, divergence = n }
  end
end
local baseline = args.study == "lambda" and "rkl (reverse KL)" or "dijs"

local arms = {}
for _, r in ipairs(rows_spec) do arms[#arms + 1] = r end
arms = wb.stats.seed_arms(arms, seeds)

local results = wb.arms{
  name = "orderings_2d", out = out, arms = arms, jobs = "auto",
  setup = function() return T.setup(args, out) end,
  run = function(arm, s)
    local spec = arm.divergence == "sba" and { "sba", lambda = arm.lambda } or arm.divergence
    local student = wb.distill(T.student(args, s, arm, out, {
      ratio = ratio_spec, divergence = spec,
      time_weight = args.study == "scorefree" and "sigma2" or "dmd",
      sigma_fixed = args.study == "scorefree" and args.sf_sigma or nil,
      normalize_batch = args.normalize_batch, logit_clamp = args.logit_clamp,
    }))
    local m = wb.evaluate(student, s.data, T.eval_opts(args, arm.seed))
    local log = student.log
    local w_key = wb.score_free_divergences()[arm.divergence] and "mean_w_l" or "mean_w_s"
    local d = C.train_diagnostics(student, out .. "/runs/" .. arm.name, args.steps, w_key)
    return { row = { modes = m.modes, tv = m.tv, quality = m.quality, mmd = m.mmd, mmd_fine = m.mmd_bw005,
                     disc_acc = d.disc_acc, w_mean = d.w_mean, w_max = d.w_max, seconds = student.train_seconds },
             curve = { x = log.step, y = log.mmd } }
  end,
}

local rows, curves = {}, {}
for _, g in ipairs(wb.stats.groups(results)) do
  local per_seed, per_curve = {}, {}
  for i, res in ipairs(g.results) do per_seed[i], per_curve[i] = res.row, res.curve end
  local row = wb.stats.merge(per_seed)
  row.method = g.arm.label
  rows[#rows + 1] = row
  if #per_curve[1].x > 0 then curves[#curves + 1] = wb.stats.band(g.arm.label, per_curve) end
end
local columns = {
  { key = "method", label = "method" },
  { key = "modes", label = "modes (of 8)", format = "%.1f" },
  { key = "tv", label = "mode TV", format = "%.3f" }, { key = "quality", label = "within 3 std", format = "%.3f" },
  { key = "mmd", label = "MMD", format = "%.4f" },
}
if rows[1].mmd_fine ~= nil then columns[#columns + 1] = { key = "mmd_fine", label = "MMD h=0.05", format = "%.4f" } end
for _, c in ipairs{
  { key = "disc_acc", label = "disc. acc (last 1/4)", format = "%.3f", test = false },
  { key = "w_mean", label = args.study == "scorefree" and "mean w (log)" or "mean w_s (log)", format = "%.3g", test = false },
  { key = "w_max", label = "max logged mean w", format = "%.3g", test = false },
  { key = "seconds", label = "train s", format = "%.1f", test = false },
} do columns[#columns + 1] = c end
local best = { mmd = "min", tv = "min", quality = "max" }
if rows[1].mmd_fine ~= nil then best.mmd_fine = "min" end
local tab = wb.table(rows, columns, { best = best, baseline = baseline })
print()
tab:print()
tab:write(out .. "/table", { "md", "tex", "csv" })
if #curves > 0 then
  wb.plot_lines(out .. "/mmd_curves.png", { title = ("MMD during distillation (%s; mean and range of %d seeds)")
    :format(args.study == "lambda" and "SBA lambda, " .. args.ratio or "score-free, sigma^2 at " .. args.sf_sigma, #seeds),
    xlabel = "generator updates", ylabel = "MMD", log_y = true, series = curves })
end
print(("\nwrote %s/table.{md,tex,csv}, mmd_curves.png, runs/ and arms/"):format(out))
