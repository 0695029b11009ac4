-- tests/lua/compare_tables.lua — two CSV tables written by wb.table (e.g. the
-- quickstart's table.csv from a cpu run and a cuda-emu run) agree: the same
-- rows and columns, text cells equal, numeric cells within `tol` relative
-- (|a − b| ≤ tol·max(|a|, floor)), columns named in `ignore` skipped (the
-- timing column differs by nature).
--
-- Run: build/workbench run tests/lua/compare_tables.lua a=A.csv b=B.csv [tol=1e-3] [ignore=train s]
local wb = require "wb"

local args = wb.args{ a = "", b = "", tol = 1e-3, floor = 1e-3, ignore = "train s" }
assert(args.a ~= "" and args.b ~= "", "compare_tables: give a=FILE.csv b=FILE.csv")

-- One CSV line's cells (RFC 4180 as wb.table writes it: a quoted cell may
-- hold commas, "" is a quote inside one).
local function split_csv(line)
  local cells, i = {}, 1
  while i <= #line + 1 do
    if line:sub(i, i) == '"' then
      local text, j = {}, i + 1
      while true do
        local q = assert(line:find('"', j, true), "compare_tables: unterminated quote in: " .. line)
        text[#text + 1] = line:sub(j, q - 1)
        if line:sub(q + 1, q + 1) == '"' then
          text[#text + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      cells[#cells + 1] = table.concat(text)
      i = i + 1 -- the comma after the closing quote
    else
      local comma = line:find(",", i, true) or #line + 1
      cells[#cells + 1] = line:sub(i, comma - 1)
      i = comma + 1
    end
  end
  return cells
end

local function read_csv(path)
  local f = assert(io.open(path, "r"), "compare_tables: cannot open " .. path)
  local rows = {}
  for line in f:lines() do rows[#rows + 1] = split_csv(line) end
  f:close()
  return rows
end

local ignored = {}
for name in args.ignore:gmatch("[^,]+") do ignored[name] = true end

local a, b = read_csv(args.a), read_csv(args.b)
assert(#a == #b, ("compare_tables: %d rows in %s, %d in %s"):format(#a, args.a, #b, args.b))
local header = a[1]
local worst, worst_at, failures = 0, "-", 0
for r = 1, #a do
  assert(#a[r] == #b[r], ("compare_tables: row %d has %d cells in one table, %d in the other"):format(r, #a[r], #b[r]))
  for c = 1, #a[r] do
    local col = header[c]
    -- a seeded column's _std, _lo, _hi, _n, _p go with it
    if r > 1 and not ignored[col] and not ignored[(col:gsub("_[a-z]+$", ""))] then
      local x, y = tonumber(a[r][c]), tonumber(b[r][c])
      local where = ("row %d (%s), column '%s'"):format(r, a[r][1], col)
      if x and y then
        local e = math.abs(x - y) / math.max(math.abs(x), args.floor)
        if e > worst then worst, worst_at = e, where end
        if e > args.tol then
          print(("%s: %s vs %s (%.3g relative, tolerance %g)"):format(where, a[r][c], b[r][c], e, args.tol))
          failures = failures + 1
        end
      elseif a[r][c] ~= b[r][c] then
        print(("%s: '%s' vs '%s'"):format(where, a[r][c], b[r][c]))
        failures = failures + 1
      end
    end
  end
end
print(("%s vs %s: %d rows, worst relative difference %.3g at %s"):format(args.a, args.b, #a - 1, worst, worst_at))
if failures > 0 then error(("%d cell(s) differ beyond tolerance %g"):format(failures, args.tol)) end
