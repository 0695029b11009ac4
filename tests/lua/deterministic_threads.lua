-- tests/lua/deterministic_threads.lua — one small run whose checkpoints CTest
-- compares byte for byte between OPENBLAS_NUM_THREADS=1 and 2 with
-- WB_DETERMINISTIC=1 (issue 10, defect 4: in the default mode OpenBLAS's
-- thread split changes the last bits of GEMMs, and training grows them into
-- different weights). The shapes are above OpenBLAS's threading threshold:
-- an MLP at batch 256 (a 256×256×256 GEMM per layer), and a small UNet on
-- 16×16 images, whose convolutions go through oneDNN (WB_CONV=auto picks it
-- for 3×3 kernels) and, for the 1×1 ones, through im2col + GEMM.
-- Args: out = a fresh folder; images = false leaves the UNet out. With
-- a = DIR1 b = DIR2 instead: compares two such folders — the tensors of
-- every checkpoint byte for byte (the data section after the safetensors
-- header; the header's metadata records the thread count and the seconds
-- taken, which rightly differ), and both config.json files say
-- "deterministic": true.
local wb = require "wb"
local args = wb.args{ out = "", images = true, a = "", b = "" }

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- the tensors of a safetensors file: what follows the 8-byte header length and the header
local function tensor_bytes(file)
  if not file or #file < 8 then return nil end
  local n = string.unpack("<I8", file)
  return file:sub(9 + n)
end

if args.a ~= "" then
  local failures = 0
  for _, run in ipairs{ "mlp_teacher", "mlp_student", "unet_teacher", "unet_student" } do
    local pa, pb = args.a .. "/" .. run .. "/checkpoint.safetensors", args.b .. "/" .. run .. "/checkpoint.safetensors"
    local ca, cb = tensor_bytes(slurp(pa)), tensor_bytes(slurp(pb))
    if not ca and run:find("unet", 1, true) then
      print("skip " .. run .. " (not written: no Fashion-MNIST)")
    elseif not ca or not cb then
      print("FAIL " .. run .. ": missing " .. (ca and pb or pa))
      failures = failures + 1
    elseif ca ~= cb then
      print("FAIL " .. run .. ": the checkpoints' tensors differ between " .. args.a .. " and " .. args.b)
      failures = failures + 1
    else
      print("ok   " .. run .. ": tensors bit-identical (" .. #ca .. " bytes)")
    end
    local config = slurp(args.a .. "/" .. run .. "/config.json")
    if config and not config:find('"deterministic":%s*true') then
      print("FAIL " .. run .. ": config.json does not record \"deterministic\": true")
      failures = failures + 1
    end
  end
  if failures > 0 then error(failures .. " failure(s): the result depends on the thread count") end
  return
end
assert(args.out ~= "", "out= is required")

local gmm = wb.data.gmm2d{ preset = "ring8-imbalanced" }
local mlp = { "mlp", widths = { 256, 256 } }
local t = wb.teacher{ data = gmm, net = mlp, steps = 30, batch = 256, seed = 3, quiet = true, log_every = 0,
                      grid = 0, run = args.out .. "/mlp_teacher" }
wb.distill{ teacher = t, data = gmm, divergence = "kl", steps = 20, batch = 256, seed = 3,
            ratio = { "classifier", net = mlp }, log_every = 0, quiet = true, grid = 0,
            run = args.out .. "/mlp_student" }

if args.images then
  local ok, data = pcall(wb.data.images, { kind = "fashion-mnist", resize_to = 16, max_images = 64 })
  if not ok then
    print("SKIP: no Fashion-MNIST for the UNet half (" .. tostring(data) .. ")")
    return
  end
  local unet = { "unet", channels = 32, multipliers = { 1, 2 }, attn_resolutions = { 8 } }
  local ti = wb.teacher{ data = data, net = unet, steps = 4, batch = 8, seed = 3, quiet = true, log_every = 0,
                         grid = 0, run = args.out .. "/unet_teacher" }
  wb.distill{ teacher = ti, data = data, divergence = "kl", steps = 2, batch = 8, seed = 3,
              ratio = { "classifier", net = { "unet", channels = 32, multipliers = { 1, 2 }, attn_resolutions = { 8 },
                                              encoder_only = true } },
              log_every = 0, quiet = true, grid = 0, run = args.out .. "/unet_student" }
end
print("wrote " .. args.out)
