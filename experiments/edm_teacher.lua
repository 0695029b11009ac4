-- experiments/edm_teacher.lua — distil one of EDM's own teachers: a snapshot
-- converted by scripts/convert_edm.py (its net spec and preconditioning are
-- read from the file), Heun samples of the teacher, a one-step student
-- distilled with any divergence, and FID-style metrics of both (with
-- `inception=` the papers' FID on Inception-v3 features) in one table.
--
--   teacher   the converted .safetensors (required)
--   data      the data the teacher was trained on: data_kind (cifar10,
--             cifar100, fashion-mnist, png-folder) at data=DIR, optionally
--             resized (resize=) to the teacher's resolution
--   student   steps × batch generator updates of `divergence` (default kl),
--             ratio estimator: the classifier on a small UNet encoder
--   metrics   n samples of each; inception=pt_inception.safetensors adds FID
--             on Inception (scripts/convert_inception.py makes it)
--
-- Run (README, "Distil EDM's CIFAR-10 teacher"):
--   build/workbench run experiments/edm_teacher.lua teacher=edm.safetensors data=cifar-10-batches-bin \
--       divergence=kl steps=1000 batch=64 n=10000 inception=pt_inception.safetensors
local wb = require "wb"
local C = require "lib.common"

local args = wb.args{
  teacher = "", data = "", data_kind = "cifar10", resize = 0,
  divergence = "kl", steps = 200, batch = 16, lr = 1e-5, seed = 0,
  n = 1000, classifier_steps = 1500, inception = "", sample_steps = 18, grid = 64,
  out = "results/edm_teacher", quiet = false,
}
if args.teacher == "" then error("edm_teacher.lua: give teacher=FILE.safetensors (scripts/convert_edm.py convert)", 0) end
if args.data == "" then error("edm_teacher.lua: give data=DIR (the teacher's training data)", 0) end
-- the rest checked before any work too (a typo must not cost a distillation run)
C.check_args("edm_teacher.lua", args, {
  { "steps", int = true, min = 0 }, { "batch", int = true, min = 1, max = 4096 }, { "lr", min = 0 },
  { "seed", int = true, min = 0 }, { "n", int = true, min = 4 }, { "classifier_steps", int = true, min = 1 },
  { "sample_steps", int = true, min = 1, max = 100000 }, { "grid", int = true, min = 0, max = 1024 },
  { "resize", int = true, min = 0, note = "0: as stored" },
  { "data_kind", choices = { "cifar10", "cifar100", "fashion-mnist", "mnist", "png-folder" } },
  { "teacher", file = true }, { "data", dir = true }, { "inception", file = true },
})
C.require_divergences("edm_teacher.lua", "divergence", { args.divergence })

local info = wb.checkpoint_info(args.teacher)
if not info.net then
  error(("edm_teacher.lua: %s carries no net spec (unet_spec): convert it with scripts/convert_edm.py convert")
        :format(args.teacher), 0)
end
wb.mkdir(args.out)
local data = wb.data.images{ kind = args.data_kind, path = args.data,
                             resize_to = args.resize > 0 and args.resize or nil }

-- 1. the teacher, as converted ------------------------------------------------------
local teacher = wb.teacher{ data = data, net = info.net, precond = info.precond, init = args.teacher, steps = 0,
                            run = args.out .. "/teacher", grid = args.grid, quiet = args.quiet }

-- 2. a one-step student ---------------------------------------------------------------
local levels = #info.net.multipliers
local clf = { "unet", channels = 16, multipliers = levels >= 3 and { 1, 2, 2 } or { 1, 2 }, attn_resolutions = { 0 },
              encoder_only = true }
local student = wb.distill{ teacher = teacher, data = data, divergence = args.divergence, steps = args.steps,
                            batch = args.batch, lr = args.lr, seed = args.seed,
                            ratio = { "classifier", net = clf }, run = args.out .. "/" .. args.divergence,
                            grid = args.grid, quiet = args.quiet }

-- 3. metrics ------------------------------------------------------------------------------
local opts = { n = args.n, cache = args.out .. "/cache", classifier_steps = args.classifier_steps, quiet = args.quiet,
               inception = args.inception ~= "" and args.inception or nil }
local rows = {}
local function row(name, nfe, m)
  rows[#rows + 1] = { method = name, nfe = nfe, fid = m.fid, fid_inception = m.fid_inception,
                      precision = m.precision, recall = m.recall }
end
row(("teacher (Heun, %s)"):format(info.precond), 2 * args.sample_steps - 1,
    wb.image_metrics(teacher:sample(args.n, { steps = args.sample_steps, seed = 2 }), data, opts))
row(args.divergence .. " student", 1, wb.image_metrics(student, data, opts))

local columns = { { key = "method", label = "method" }, { key = "nfe", label = "NFE", format = "%d" },
                  { key = "fid", label = "FID (features)", format = "%.2f" } }
if opts.inception then columns[#columns + 1] = { key = "fid_inception", label = "FID (Inception)", format = "%.2f" } end
columns[#columns + 1] = { key = "precision", label = "precision", format = "%.3f" }
columns[#columns + 1] = { key = "recall", label = "recall", format = "%.3f" }
local tab = wb.table(rows, columns, { best = { fid = "min" } })
print()
tab:print()
tab:write(args.out .. "/table", { "md", "tex", "csv" })
print(("wrote %s/table.{md,tex,csv}; teacher and student runs under %s"):format(args.out, args.out))
