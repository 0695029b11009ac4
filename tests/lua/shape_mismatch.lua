-- tests/lua/shape_mismatch.lua — a teacher and data of different sample
-- shapes are refused before anything trains (issue 10, defect 2: an exact
-- 2-D teacher given Fashion-MNIST used to "complete", denoising 2 of every
-- 784 values and reading the rest uninitialised).
local wb = require "wb"
local ok_img, images = pcall(wb.data.images, { kind = "fashion-mnist", resize_to = 8, max_images = 64 })
if not ok_img then
  print("SKIP: Fashion-MNIST not installed (dataset-fashion-mnist): " .. tostring(images))
  return
end
local ring = wb.data.gmm2d{ preset = "ring8" }
local exact = wb.teacher{ data = ring, exact = true }
local ok, err = pcall(wb.distill, { teacher = exact, data = images, divergence = "kl", init = "none",
                                    net = { "mlp" }, steps = 2, batch = 8, quiet = true })
print(ok and "accepted" or err)
assert(not ok, "an exact 2-D teacher distilled on images")
assert(err:find("differ in shape", 1, true) and err:find("ring8", 1, true),
       "the error does not say what differs: " .. err)
print("ok")
