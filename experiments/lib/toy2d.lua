-- experiments/lib/toy2d.lua — the quickstart's 2-D setting, written once for
-- the 2-D studies (orderings_2d.lua, toy_fidelity.lua): its arguments and
-- their defaults, the EDM MLP teacher on the Gaussian mixture, the
-- classifier ratio estimator, a student's wb.distill options and the
-- evaluation draws of a seed.
--
--   local T = require "lib.toy2d"       -- found next to the script (experiments/)
--   local args = wb.args(T.args{ study = "lambda", ... })   -- the script's own keys on top
--   T.check(args, "orderings_2d")
--   setup = function() return T.setup(args, out) end        -- { data, teacher }
--   wb.distill(T.student(args, s, arm, out, { ratio = ..., divergence = ... }))
--   wb.evaluate(student, s.data, T.eval_opts(args, arm.seed))
--
-- The quickstart itself (experiments/quickstart.lua, the README's main job)
-- keeps its own copy of these lines: it is the one script a reader opens
-- first, and it reads whole.
local wb = require "wb"

local T = {}

-- The quickstart's recipe: 8 Gaussians (weights 30 % … 5 %), a 3000-step
-- teacher, 1000 generator updates at batch 256, the generator at lr 1e-3,
-- the ratio estimator at 3e-3 with 2 updates per generator update, 3 seeds,
-- 2000 evaluation samples, an MMD curve point every 100 updates.
T.DEFAULTS = {
  preset = "ring8-imbalanced",
  teacher_steps = 3000,
  steps = 1000,
  batch = 256,
  lr = 1e-3,
  lr_ratio = 3e-3,
  ratio_updates = 2,
  seed = 0,
  seeds = 3,
  n_eval = 2000,
  eval_every = 100,
  quiet = true,
  deterministic = true,
}

-- The defaults with a script's own keys (and defaults) on top, for wb.args.
function T.args(own)
  local spec = {}
  for k, v in pairs(T.DEFAULTS) do spec[k] = v end
  for k, v in pairs(own or {}) do spec[k] = v end
  return spec
end

-- The shared keys checked before any work (a typo must not cost a teacher
-- run); turns on the CPU's deterministic mode when asked (the arms run on
-- workers of one thread: the table must be a two-thread process's).
function T.check(args, script)
  local function want(ok, key, what)
    if not ok then error(("%s: %s = %s: want %s"):format(script, key, tostring(args[key]), what), 0) end
  end
  for _, k in ipairs{ "seeds", "steps", "teacher_steps", "batch", "n_eval" } do
    want(args[k] >= 1 and args[k] == math.floor(args[k]), k, "an integer >= 1")
  end
  want(args.ratio_updates >= 0 and args.ratio_updates == math.floor(args.ratio_updates), "ratio_updates", "an integer >= 0")
  want(args.eval_every >= 0, "eval_every", ">= 0")
  want(args.seed >= 0 and args.seed == math.floor(args.seed), "seed", "an integer >= 0")
  if args.deterministic then wb.deterministic(true) end
  return wb.stats.seeds(args.seed, args.seeds)
end

-- wb.arms setup: the data and the teacher (trained once, seed `seed`, into
-- OUT/runs/teacher; every worker loads it from there).
function T.setup(args, out)
  local data = wb.data.gmm2d{ preset = args.preset }
  local teacher = wb.teacher{ data = data, net = { "mlp", widths = { 128, 128, 128 } }, steps = args.teacher_steps,
                              batch = args.batch, seed = args.seed, run = out .. "/runs/teacher", quiet = args.quiet }
  return { data = data, teacher = teacher }
end

-- The quickstart's ratio estimator: a σ-conditioned MLP classifier.
function T.classifier() return { "classifier", net = { "mlp", widths = { 128, 128, 128 } } } end

-- A student's wb.distill options: the recipe for arm.seed into
-- OUT/runs/<arm.name>, with `extra` (divergence, ratio, weighting, …) on top.
function T.student(args, s, arm, out, extra)
  local opts = {
    teacher = s.teacher, data = s.data, batch = args.batch, seed = arm.seed, lr = args.lr, lr_ratio = args.lr_ratio,
    ratio_updates = args.ratio_updates, ratio = T.classifier(), steps = args.steps, time_weight = "dmd",
    eval_samples = args.eval_every > 0 and 500 or 0, log_every = args.eval_every > 0 and args.eval_every or 100,
    quiet = args.quiet, run = out .. "/runs/" .. arm.name,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

-- Seed s's evaluation draws (seed 0: the draws the one-seed quickstart used).
function T.eval_opts(args, seed)
  return { n = args.n_eval, reference_n = args.n_eval, seed = 1 + 10 * seed, sample_seed = 2 + 10 * seed }
end

return T
