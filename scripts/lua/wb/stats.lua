-- scripts/lua/wb/stats.lua — wb.stats: what a multi-seed experiment needs to
-- report a difference only where it is larger than the seeds' noise.
--
--   wb.stats.summary(values [, level])  -> {n, mean, std, lo, hi}
--        mean, sample std (n − 1), and the Student-t interval of the mean at
--        `level` (default 0.95): mean ± t_{(1+level)/2, n−1}·std/√n; std, lo,
--        hi are NaN for one value
--   wb.stats.paired(a, b)               -> {n, mean_diff, t, p}
--        two-sided paired t-test over seeds: a[i], b[i] from the same seed
--        (same teacher, same data); p = 0 when every a[i] − b[i] is the same
--        non-zero number, 1 when all are 0
--   wb.stats.merge(rows [, fixed])      -> one row
--        rows[i] = seed i's row; a number key becomes the array of the
--        seeds' values (a wb.table cell shows it as mean ± std); a string
--        the seeds agree on stays; strings that differ are joined with "/"
--        in seed order ("no/yes/no"); keys listed in `fixed` (labels such
--        as nfe or λ) keep the first seed's value
--   wb.stats.band(name, curves)         -> {name, x, y, lo, hi}
--        curves[i] = {x = ..., y = ...} of seed i; at every x that all seeds
--        logged: the mean (y) and the seeds' min (lo) and max (hi), for
--        wb.plot_lines' shaded band
--   wb.stats.seeds(first, count)        -> {first, first+1, ...}: an experiment's seeds=
--   wb.stats.seed_arms(arms, seeds)     -> arms, one per (arm, seed)
--        every arm without `seeds = false` becomes one arm per seed, named
--        <name>_s<seed>, with arm.seed and arm.base (its name) set; the
--        others stay as they are (a shared teacher, say)
--   wb.stats.groups(results)            -> {{name, arm, seeds, results}, ...}
--        wb.arms' results gathered back by base arm, in the arms' order:
--        results[i] is seed seeds[i]'s result
--
-- The numbers come from host/report/seed_stats.c (checked against scipy in
-- tests/test_seed_stats.c); wb.table (wb.lua) uses them for its cells, its
-- interval table and its difference markers.
local core = require "wb.core"

local stats = {}

function stats.summary(values, level) return core.seed_summary(values, level) end

function stats.paired(a, b) return core.paired_t(a, b) end

function stats.merge(rows, fixed)
  if type(rows) ~= "table" or #rows == 0 then error("wb.stats.merge: expects an array of rows, one per seed", 2) end
  local keep = {}
  for _, k in ipairs(fixed or {}) do keep[k] = true end
  local keys, order = {}, {}
  for _, r in ipairs(rows) do
    for k in pairs(r) do if not keys[k] then keys[k] = true; order[#order + 1] = k end end
  end
  table.sort(order, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for _, k in ipairs(order) do
    local nums, texts, same = {}, {}, true
    for i, r in ipairs(rows) do
      local v = r[k]
      if type(v) == "number" then nums[#nums + 1] = v end
      texts[i] = v == nil and "-" or tostring(v)
      if texts[i] ~= texts[1] then same = false end
    end
    if keep[k] then
      out[k] = rows[1][k]
    elseif #nums == #rows then
      out[k] = #nums == 1 and nums[1] or nums
    elseif same then
      out[k] = rows[1][k]
    else
      out[k] = table.concat(texts, "/")
    end
  end
  return out
end

function stats.band(name, curves)
  local count, n = {}, #curves
  for _, c in ipairs(curves) do
    for _, x in ipairs(c.x) do count[x] = (count[x] or 0) + 1 end
  end
  local xs = {}
  for x, k in pairs(count) do if k == n then xs[#xs + 1] = x end end
  table.sort(xs)
  local at = {}
  for i, c in ipairs(curves) do
    at[i] = {}
    for j, x in ipairs(c.x) do at[i][x] = c.y[j] end
  end
  local y, lo, hi = {}, {}, {}
  for j, x in ipairs(xs) do
    local s, mn, mx = 0, math.huge, -math.huge
    for i = 1, n do
      local v = at[i][x]
      s = s + v
      mn, mx = math.min(mn, v), math.max(mx, v)
    end
    y[j], lo[j], hi[j] = s / n, mn, mx
  end
  return { name = name, x = xs, y = y, lo = lo, hi = hi }
end

function stats.seeds(first, count)
  if math.type(first) ~= "integer" and not (type(first) == "number" and first == math.floor(first)) or first < 0 then
    error(("seed = %s: want an integer >= 0"):format(tostring(first)), 2)
  end
  if type(count) ~= "number" or count ~= math.floor(count) or count < 1 or count > 1000 then
    error(("seeds = %s: want an integer from 1 to 1000 (how many seeds, from seed= on)"):format(tostring(count)), 2)
  end
  local out = {}
  for i = 0, math.tointeger(count) - 1 do out[#out + 1] = math.tointeger(first + i) end
  return out
end

function stats.seed_arms(arms, seeds)
  local out = {}
  for _, arm in ipairs(arms) do
    if arm.seeds == false then
      out[#out + 1] = arm
    else
      for _, seed in ipairs(seeds) do
        local a = {}
        for k, v in pairs(arm) do a[k] = v end
        a.name, a.base, a.seed = ("%s_s%d"):format(arm.name, seed), arm.name, seed
        out[#out + 1] = a
      end
    end
  end
  return out
end

function stats.groups(results)
  local groups, at = {}, {}
  for _, r in ipairs(results) do
    local base = r.arm.base or r.arm.name
    local g = at[base]
    if g == nil then
      g = { name = base, arm = r.arm, seeds = {}, results = {} }
      at[base] = g
      groups[#groups + 1] = g
    end
    g.seeds[#g.seeds + 1] = r.arm.seed
    g.results[#g.results + 1] = r.result
  end
  groups.by_name = at
  return groups
end

return stats
