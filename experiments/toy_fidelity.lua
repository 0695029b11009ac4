-- experiments/toy_fidelity.lua — how close does a one-step student get to
-- its teacher at fine scale? The quickstart's students leave bridges
-- between the modes (samples.png); the table's MMD mixes five bandwidths.
-- This reports the MMD at every bandwidth and tries, over seeds, the tools
-- the papers use to close the gap, each against the quickstart's recipe:
--
--   base       the quickstart's student (divergence=kl by default: the best
--              of its table), 1000 steps, lr 1e-3, lr_ratio 3e-3, 2 ratio updates
--   long       4× the budget (4000 steps)
--   gan        + DMD2's GAN term w_GAN·softplus(−l(G(z)_t)) (gan_weight, two values)
--   ttur       two time-scale: the generator at lr/3, the ratio estimator and
--              the fake score updated twice as often (TTUR, Heusel et al.)
--   sida       the SiDA estimator (fake-encoder: the fake score's encoder as
--              the discriminator, trained with its DSM) with the GAN term
--   all        long + gan + ttur together
--
-- The teacher's 18-step Heun row (35 evaluations) is the target. Every row
-- runs once per seed (seeds=3; rows of a seed share the teacher, data and
-- evaluation draws: paired t-test against `base`, "†").
--
-- Run:   build/workbench run experiments/toy_fidelity.lua [divergence=kl] [seeds=3] [key=value ...]
-- Writes OUT/table.{md,tex,csv}, OUT/samples.png (first seed), OUT/mmd_curves.png, runs/, arms/.
local wb = require "wb"
local T = require "lib.toy2d" -- the quickstart's 2-D setting: its defaults, teacher, student options

local args = wb.args(T.args{
  divergence = "kl",
  long_factor = 4,
  gan_weights = "0.01,0.1",
  out = "results/toy_fidelity",
})
wb.select_divergences(args.divergence)
if args.long_factor < 1 or args.long_factor ~= math.floor(args.long_factor) then
  error(("toy_fidelity: long_factor = %s: want an integer >= 1"):format(args.long_factor), 0)
end
local gan_weights = {}
for v in args.gan_weights:gmatch("[^,%s]+") do
  local x = tonumber(v)
  if x == nil or x < 0 then error(("toy_fidelity: gan_weights = %s: '%s' is not a number >= 0"):format(args.gan_weights, v), 0) end
  gan_weights[#gan_weights + 1] = x
end
local seeds = T.check(args, "toy_fidelity")
wb.mkdir(args.out)

local long = args.steps * args.long_factor
local ttur = { lr = args.lr / 3, ratio_updates = 2 * args.ratio_updates, fake_updates = 2 }
local variants = {
  { name = "teacher", label = "teacher (Heun, 35 NFE)", teacher = true },
  { name = "base", label = "base" },
  { name = "long", label = ("long (%d steps)"):format(long), opts = { steps = long } },
}
for _, w in ipairs(gan_weights) do
  variants[#variants + 1] = { name = ("gan_%g"):format(w), label = ("gan (w_GAN=%g)"):format(w), opts = { gan_weight = w } }
end
variants[#variants + 1] = { name = "ttur", label = "ttur (lr/3, 2x ratio and fake updates)", opts = ttur }
local gan_last = gan_weights[#gan_weights] or 0
variants[#variants + 1] = { name = "sida", label = ("sida (fake-encoder, w_GAN=%g)"):format(gan_last),
                            opts = { ratio = { "fake-encoder" }, gan_weight = gan_last } }
variants[#variants + 1] = { name = "all", label = ("all (long + gan %g + ttur)"):format(gan_last),
                            opts = { steps = long, gan_weight = gan_last, lr = ttur.lr, ratio_updates = ttur.ratio_updates,
                                     fake_updates = ttur.fake_updates } }
local arms = wb.stats.seed_arms(variants, seeds)

local results = wb.arms{
  name = "toy_fidelity", out = args.out, arms = arms, jobs = "auto",
  setup = function() return T.setup(args, args.out) end,
  run = function(arm, s)
    local ev = T.eval_opts(args, arm.seed)
    local function row_of(m, seconds)
      local row = { modes = m.modes, tv = m.tv, quality = m.quality, seconds = seconds }
      for k, v in pairs(m) do if k:match("^mmd") and type(v) == "number" then row[k] = v end end
      return row
    end
    if arm.teacher then
      return { row = row_of(wb.evaluate(s.teacher, s.data, ev), s.teacher.train_seconds),
               samples = s.teacher:sample(args.n_eval, { steps = 18, seed = ev.sample_seed }):totable() }
    end
    local opts = { divergence = args.divergence }
    for k, v in pairs(arm.opts or {}) do opts[k] = v end
    opts = T.student(args, s, arm, args.out, opts)
    local st = wb.distill(opts)
    return { row = row_of(wb.evaluate(st, s.data, ev), st.train_seconds),
             samples = st:sample(args.n_eval, { seed = ev.sample_seed }):totable(),
             curve = { x = st.log.step, y = st.log.mmd } }
  end,
}

local data = wb.data.gmm2d{ preset = args.preset }
local reference = data:sample(args.n_eval, 1)
local rows, panels, curves, mmd_keys = {}, {}, {}, {}
for _, g in ipairs(wb.stats.groups(results)) do
  local per_seed, per_curve = {}, {}
  for i, res in ipairs(g.results) do per_seed[i], per_curve[i] = res.row, res.curve end
  local row = wb.stats.merge(per_seed)
  row.method = g.arm.label
  rows[#rows + 1] = row
  for k in pairs(g.results[1].row) do if k:match("^mmd.") then mmd_keys[k] = true end end
  panels[#panels + 1] = { title = g.arm.label, reference = reference, samples = wb.samples(g.results[1].samples) }
  if per_curve[1] and #per_curve[1].x > 0 then curves[#curves + 1] = wb.stats.band(g.arm.name, per_curve) end
end
local columns = { { key = "method", label = "method" }, { key = "modes", label = "modes (of 8)", format = "%.1f" },
                  { key = "tv", label = "mode TV", format = "%.3f" }, { key = "quality", label = "within 3 std", format = "%.3f" },
                  { key = "mmd", label = "MMD (5 bandwidths)", format = "%.4f" } }
local best = { mmd = "min", tv = "min", quality = "max" }
local keys = {}
for k in pairs(mmd_keys) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do
  columns[#columns + 1] = { key = k, label = k, format = "%.4f" }
  best[k] = "min"
end
columns[#columns + 1] = { key = "seconds", label = "train s", format = "%.1f", test = false }
local tab = wb.table(rows, columns, { best = best, baseline = "base" })
print()
tab:print()
tab:write(args.out .. "/table", { "md", "tex", "csv" })
wb.scatter_grid(args.out .. "/samples.png", panels, { columns = 4 })
if #curves > 0 then
  wb.plot_lines(args.out .. "/mmd_curves.png", { title = ("MMD during distillation (%s; mean and range of %d seeds)")
    :format(args.divergence, #seeds), xlabel = "generator updates", ylabel = "MMD", log_y = true, series = curves })
end
print(("\nwrote %s/table.{md,tex,csv}, samples.png, mmd_curves.png, runs/ and arms/"):format(args.out))
