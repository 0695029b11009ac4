-- tests/lua/arms_api.lua — the pieces of wb.arms that need no worker: its
-- JSON (scripts/lua/wb/json.lua) gives back the same Lua values bit for bit
-- and names what it cannot write or read; wb.arms checks its spec and the
-- arms' results, naming the arm and the key; the in-process mode returns
-- what the result files hold, in the arms' order.
--
-- Run: build/workbench run tests/lua/arms_api.lua out=DIR
local wb = require "wb"
local json = require "wb.json"

local args = wb.args{ out = "" }
assert(args.out ~= "", "arms_api: out=DIR is required")
local failures = 0
local function check(ok, what)
  if not ok then
    failures = failures + 1
    print("FAIL: " .. what)
  end
end
-- f raises an error whose message contains `want`
local function raises(want, f, ...)
  local ok, err = pcall(f, ...)
  check(not ok and tostring(err):find(want, 1, true) ~= nil,
        ("expected an error with '%s', got %s"):format(want, ok and "success" or tostring(err)))
end

-- bit for bit: the same type, the same bits (%a), a NaN's sign
local function same(a, b, path)
  path = path or "value"
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false, path .. ": " .. math.type(a) .. " vs " .. math.type(b) end
    local sa, sb = ("%a"):format(a), ("%a"):format(b)
    if sa ~= sb then return false, ("%s: %s vs %s"):format(path, sa, sb) end
    return true
  end
  if type(a) ~= "table" then return a == b, path end
  for k, v in pairs(a) do
    local ok, where = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, where end
  end
  for k in pairs(b) do if a[k] == nil then return false, path .. "." .. tostring(k) .. " added" end end
  return true
end

-- ---- json ------------------------------------------------------------------------
local nan = 0 / 0
local values = {
  ints = { 0, 1, -7, math.maxinteger, math.mininteger },
  floats = { 0.0, -0.0, 0.1, 1 / 3, 1e300, -2.5e-310, 3.0, 1e15, 123456789012345678.0, math.pi },
  special = { math.huge, -math.huge, nan, -nan, math.abs(nan) },
  text = { "", "plain", 'quote " and \\ back', "tab\tnew\nline\1\31", "λ σ — ünïcode" },
  flags = { true, false },
  nested = { a = { b = { c = { 1, 2, { d = "e" } } } }, empty = {} },
  samples = wb.samples{ { 0.25, -1.5 }, { 1e-8, 3 } }:totable(),
}
local text = json.encode(values, "values")
local back = json.decode(text, "text")
local ok, where = same(values, back)
check(ok, "round trip: " .. tostring(where))
check(json.encode(back, "again") == text, "the same value gives the same text")
check(json.encode({ b = 1, a = 2 }) == '{"a":2,"b":1}', "object keys sorted")
check(json.encode({}) == "[]", "the empty table is []")
check(json.encode(3.0) == "3.0" and json.encode(3) == "3", "floats stay floats, integers integers")
check(json.decode('"\\u00e9\\ud83d\\ude00"', "u") == "é😀", "\\u escapes and surrogate pairs")

raises("where.f: a function is not JSON", json.encode, { f = print }, "where")
raises("where.s: a userdata is not JSON (Samples: convert them with s:totable())", json.encode,
       { s = wb.samples{ { 1, 2 } } }, "where")
raises("both positions (1..1) and names", json.encode, { 1, x = 2 }, "where")
raises("where: key 3 (a number) is neither a position 1..1", json.encode, { 1, [3] = 2 }, "where")
raises("nested more than 200 deep", json.encode, (function() local t = {}; t.t = t; return t end)(), "loop")
raises("file.json: not valid JSON at byte 8 (line 1): expected ',' or '}'", json.decode, '{"a":1 "b":2}', "file.json")
raises("file.json: not valid JSON at byte 1 (line 1): unexpected end", json.decode, "", "file.json")
raises("text after the value", json.decode, "[1] 2", "file.json")
raises("unterminated string", json.decode, '["abc', "file.json")

-- ---- the spec ----------------------------------------------------------------------
local function spec(extra)
  local t = { name = "api", out = args.out, arms = { { name = "x" } }, run = function() return {} end }
  for k, v in pairs(extra) do t[k] = v end
  return t
end
raises("wb.arms: unknown key 'rnu'", wb.arms, spec{ rnu = 1 })
raises("wb.arms: key 'name' = a b: want a name", wb.arms, spec{ name = "a b" })
raises("wb.arms (api): key 'out' (the output folder) is required", wb.arms, spec{ out = "" })
raises("wb.arms (api): key 'arms' needs at least one arm", wb.arms, spec{ arms = {} })
raises("arm name 'x' is given twice (arms 1 and 2)", wb.arms, spec{ arms = { { name = "x" }, { name = "x" } } })
raises("arm 1: 'setup' names the shared setup", wb.arms, spec{ arms = { { name = "setup" } } })
raises("arm 1: name = a/b: want [A-Za-z0-9._-]+", wb.arms, spec{ arms = { { name = "a/b" } } })
raises("wb.arms (api): arm 'x'.f: a function is not JSON (an arm is a configuration", wb.arms,
       spec{ arms = { { name = "x", f = print } } })
raises("key 'jobs' = 0: want an integer >= 1", wb.arms, spec{ jobs = 0 })
raises("report_args[1] = out: want the name of a script argument", wb.arms, spec{ report_args = { "out" } })
raises("report_args[2] = jobs: want the name of a script argument", wb.arms, spec{ report_args = { "baseline", "jobs" } })
raises("key 'report_args' expects a table, got string", wb.arms, spec{ report_args = "baseline" })

-- ---- results ---------------------------------------------------------------------------
raises("wb.arms (api): arm 'x': result.s: a userdata is not JSON (Samples: convert them", wb.arms,
       spec{ run = function() return { s = wb.samples{ { 1, 2 } } } end })
raises("wb.arms (api): arm 'x': run returned a number, not a table", wb.arms, spec{ run = function() return 1 end })
raises("wb.arms (api): arm 'x' failed: ", wb.arms, spec{ run = function() error("on purpose") end })

local order = {}
local results = wb.arms(spec{
  arms = { { name = "b", value = 1 / 3 }, { name = "a", value = -nan }, { name = "c", value = 7 } },
  setup = function() return { shared = true } end,
  run = function(arm, shared)
    order[#order + 1] = arm.name
    check(shared.shared, "run gets the setup's value")
    return { value = arm.value, twice = { arm.value, arm.value } }
  end,
})
check(table.concat(order, ",") == "b,a,c", "arms run in their order")
check(#results == 3 and results[1].name == "b" and results[2].name == "a" and results[3].name == "c",
      "results in the arms' order")
for _, r in ipairs(results) do
  local equal, at = same(r.result, { value = r.arm.value, twice = { r.arm.value, r.arm.value } })
  check(equal, "arm " .. r.name .. ": the result read back is the one returned (" .. tostring(at) .. ")")
  check(results.by_name[r.name] == r.result, "by_name[" .. r.name .. "]")
end
local f = io.open(args.out .. "/arms/b.json")
check(f ~= nil, "the result file exists")
if f then
  local rec = json.decode(f:read("a"), "b.json")
  f:close()
  check(rec.arm == "b" and rec.format == "wb.arms/1" and rec.key.arm.name == "b", "the record names its arm and key")
end

if failures > 0 then error(("arms_api: %d check(s) failed"):format(failures)) end
print("arms_api: every check passed")
