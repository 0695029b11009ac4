-- tests/lua/option_bounds.lua — every engine option is range- and NaN-checked
-- before any work (issue 10, defect 3): each bad value is refused with a
-- message naming the key, the value and the range; nothing trains.
local wb = require "wb"
local data = wb.data.gmm2d{ preset = "ring8" }
local teacher = wb.teacher{ data = data, steps = 1, batch = 8, quiet = true }
local cases = {
  { "teacher", "ema", 0 / 0 }, { "teacher", "ema", -5 }, { "teacher", "ema", 1 }, { "teacher", "lr", -1 },
  { "teacher", "single_sigma", -1 }, { "teacher", "p_std", -1 }, { "teacher", "p_std", 0 },
  { "teacher", "p_mean", 0 / 0 }, { "teacher", "lr", math.huge },
  { "distill", "lr", -1 }, { "distill", "beta1", 2 }, { "distill", "sigma_fixed", -1 },
  { "distill", "logit_clamp", -1 }, { "distill", "gan_weight", 0 / 0 }, { "distill", "ema", -5 },
  { "distill", "t_max", 1.5 }, { "distill", "sigma_init", 0 }, { "distill", "r1", -1 }, { "distill", "r1_sigma", 0 },
}
local failures = 0
for _, c in ipairs(cases) do
  local what, key, value = c[1], c[2], c[3]
  local opts
  if what == "teacher" then
    opts = { data = data, steps = 1, batch = 8, quiet = true }
  else
    opts = { teacher = teacher, data = data, divergence = "kl", steps = 1, batch = 8, quiet = true }
  end
  opts[key] = value
  local ok, err = pcall(what == "teacher" and wb.teacher or wb.distill, opts)
  local shown = value ~= value and "nan" or tostring(value)
  if ok then
    print(("FAIL %s{%s = %s} was accepted"):format(what, key, shown))
    failures = failures + 1
  elseif not (err:find("key '" .. key .. "' = " .. shown, 1, true) and
              (err:find("outside its range", 1, true) or err:find("not a finite number", 1, true))) then
    print(("FAIL %s{%s = %s}: unclear message: %s"):format(what, key, shown, err))
    failures = failures + 1
  else
    print(("ok   %s{%s = %s}: %s"):format(what, key, shown, err:match("key '.*") or err))
  end
end
-- an integer option given NaN says "nan" (the C library prints 0/0 as "-nan")
local ok_nan, err_nan = pcall(wb.teacher, { data = data, steps = 0 / 0, batch = 8, quiet = true })
if ok_nan or not err_nan:find("key 'steps' expects an integer, got nan", 1, true) or err_nan:find("-nan", 1, true) then
  print("FAIL teacher{steps = nan}: " .. tostring(err_nan))
  failures = failures + 1
end
if failures > 0 then error(failures .. " bad option values not refused") end
print("all " .. #cases .. " refused")
