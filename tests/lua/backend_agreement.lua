-- tests/lua/backend_agreement.lua — the engine on another backend computes
-- what it computes on the CPU: 20 teacher steps and 20 distillation steps
-- from the same seeds on `cpu` and on `backend` (cuda-emu in CTest, cuda in
-- scripts/gpu_check.sh), for the 2-D MLP (teacher, kl, dijs) and for a tiny
-- UNet on 8×8 Fashion-MNIST (teacher, kl with a fake score, dijs), and the
-- samples must agree within `tol` of their scale (max |other − cpu| /
-- max |cpu| over every sample coordinate).
--
-- Why a tolerance and not bit-identity: the backends sum in other orders
-- (cuBLAS vs OpenBLAS, block reductions vs loops), so single steps differ
-- by ~1e-7 relative; 20 Adam steps, the sampler's 35 evaluations and the
-- one-step generator amplify that to ~1e-5…1e-4 (measured: docs/DESIGN.md
-- §7). A wrong kernel is off by ≥ 1e-2 after one step.
--
-- Run: build/workbench run tests/lua/backend_agreement.lua backend=cuda-emu
local wb = require "wb"

local args = wb.args{
  backend = "cuda-emu",
  steps = 20,           -- teacher steps and distillation steps
  tol = 1e-4,
  images = true,        -- the UNet half (needs Fashion-MNIST: dataset-fashion-mnist)
}

local function max_rel(a, b, what)
  assert(a:n() == b:n() and a:dim() == b:dim(), what .. ": shapes differ")
  local ta, tb = a:totable(), b:totable()
  local scale, worst = 0, 0
  for i = 1, #ta do
    for j = 1, #ta[i] do
      local x, y = ta[i][j], tb[i][j]
      if x ~= x or y ~= y then error(what .. ": NaN in the samples") end
      scale = math.max(scale, math.abs(x))
      worst = math.max(worst, math.abs(x - y))
    end
  end
  return worst / math.max(scale, 1e-30)
end

local failures = 0
local function check(what, a, b)
  local e = max_rel(a, b, what)
  local ok = e <= args.tol
  print(("%-34s cpu vs %s: %.3g of scale %s"):format(what, args.backend, e, ok and "ok" or
        ("FAIL (tolerance %g)"):format(args.tol)))
  if not ok then failures = failures + 1 end
end

-- ---- 2-D: MLP teacher and students ------------------------------------------------
local gmm = wb.data.gmm2d{ preset = "ring8-imbalanced" }
local mlp = { "mlp", widths = { 64, 64 } }

local function mlp_run(backend)
  local t = wb.teacher{ data = gmm, net = mlp, steps = args.steps, batch = 64, seed = 3, quiet = true,
                        log_every = 0, backend = backend }
  local out = { teacher = t:sample(256, { steps = 18, seed = 2 }) }
  for _, dv in ipairs{ "kl", "dijs" } do
    local s = wb.distill{ teacher = t, data = gmm, divergence = dv, steps = args.steps, batch = 32, seed = 3,
                          ratio = { "classifier", net = mlp }, log_every = 0, eval_samples = 0, quiet = true,
                          backend = backend }
    out[dv] = s:sample(256, { seed = 5 })
  end
  return out
end

local cpu, other = mlp_run("cpu"), mlp_run(args.backend)
check("mlp teacher, 20 steps (Heun)", cpu.teacher, other.teacher)
check("mlp student kl, 20 steps", cpu.kl, other.kl)
check("mlp student dijs, 20 steps", cpu.dijs, other.dijs)

-- the same seed gives the same numbers run to run on the backend, bit for bit
-- (no atomics in any reduction; deterministic cuDNN/cuBLAS algorithms)
local again = mlp_run(args.backend)
for _, k in ipairs{ "teacher", "kl", "dijs" } do
  local e = max_rel(other[k], again[k], "rerun " .. k)
  print(("%-34s %s twice: %s"):format("mlp " .. k .. " rerun", args.backend, e == 0 and "bit-identical ok" or
        ("FAIL (%.3g)"):format(e)))
  if e ~= 0 then failures = failures + 1 end
end

-- ---- images: tiny UNet teacher and students -----------------------------------------
if args.images then
  local data = wb.data.images{ kind = "fashion-mnist", resize_to = 8, max_images = 256 }
  local unet = { "unet", channels = 8, multipliers = { 1, 2 }, attn_resolutions = { 4 } }
  local function unet_run(backend)
    local t = wb.teacher{ data = data, net = unet, steps = args.steps, batch = 8, seed = 3, quiet = true,
                          log_every = 0, backend = backend }
    local out = { teacher = t:sample(8, { steps = 18, seed = 2 }) }
    for _, dv in ipairs{ "kl", "dijs" } do
      local s = wb.distill{ teacher = t, data = data, divergence = dv, steps = args.steps, batch = 8, seed = 3,
                            ratio = { "classifier", net = { "unet", channels = 8, multipliers = { 1, 2 },
                                                            attn_resolutions = { 4 }, encoder_only = true } },
                            log_every = 0, eval_samples = 0, quiet = true, backend = backend }
      out[dv] = s:sample(8, { seed = 5 })
    end
    return out
  end
  local ci, oi = unet_run("cpu"), unet_run(args.backend)
  check("unet teacher, 20 steps (Heun)", ci.teacher, oi.teacher)
  check("unet student kl, 20 steps", ci.kl, oi.kl)
  check("unet student dijs, 20 steps", ci.dijs, oi.dijs)
end

if failures > 0 then error(("%d comparison(s) outside tolerance %g"):format(failures, args.tol)) end
print(("cpu and %s agree within %g"):format(args.backend, args.tol))
