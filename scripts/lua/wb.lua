-- scripts/lua/wb.lua — the `wb` module experiment scripts `require "wb"`.
-- It re-exports the C module wb.core (datasets, teacher, distill, evaluate,
-- plots, plugins; see host/cli/lua_wb.c) and adds what is easier in Lua:
--   wb.args(defaults)            command-line key=value over typed defaults
--   wb.table(rows, columns, opts) result tables as Markdown, LaTeX, CSV
--   wb.select_divergences(csv)   a "kl,dijs" subset, or every loaded divergence
--   wb.divergence_families()     name -> the family each divergence declares ("plugin": none)
--   wb.score_free_divergences()  name -> true for the score-free ones (the descriptor's flag)
--   wb.arms{...}                 an experiment's independent arms, here, on local
--                                workers or on Slurm (scripts/lua/wb/arms.lua)
--   wb.stats                     seeds: summaries, paired tests, merged rows,
--                                curve bands (scripts/lua/wb/stats.lua)
-- Errors are raised at the caller's line (level 2), with the key at fault
-- named, like every wb.core function does.
local core = require "wb.core"
local arms = require "wb.arms"
local stats = require "wb.stats"

local wb = {}
for k, v in pairs(core) do wb[k] = v end

-- Data parallel (`mpirun -np N workbench run ...`): every rank runs the whole
-- script and trains its shard of every batch; rank 0 alone writes. On the
-- other ranks the writers of wb (figures, tables, folders) do nothing and
-- stdout is /dev/null (host/cli/main.c; WB_PRINT_ALL_RANKS=1 keeps it);
-- wb.rank() / wb.world_size() say where a script runs, and what it writes
-- itself (io.open) is its own affair on every rank.
if core.rank() > 0 then
  local function skip() return true end
  for _, name in ipairs{ "scatter", "scatter_grid", "plot_lines", "mkdir", "write_file" } do
    if core[name] then core[name], wb[name] = skip, skip end
  end
end

-- A library the registry refused would otherwise only show up later as an
-- "unknown divergence" error; say why now.
for _, e in ipairs(core.plugin_errors()) do
  io.stderr:write("workbench: warning: rejected plugin library ", e, "\n")
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end

-- ---- wb.args ------------------------------------------------------------------
local booleans = { ["true"] = true, ["false"] = false, ["1"] = true, ["0"] = false,
                   yes = true, no = false }

-- The command-line string s converted to the type of the default d.
local function convert(key, s, d)
  local t = math.type(d) or type(d)
  if t == "integer" or t == "float" then
    local v = tonumber(s)
    if v == nil then
      error(("wb.args: key '%s' expects a number, got '%s'"):format(key, s), 3)
    end
    if t == "integer" then
      local i = math.tointeger(v)
      if i == nil then
        error(("wb.args: key '%s' expects an integer, got '%s'"):format(key, s), 3)
      end
      return i
    end
    return v + 0.0
  elseif t == "boolean" then
    local v = booleans[s:lower()]
    if v == nil then
      error(("wb.args: key '%s' expects a boolean (true/false/1/0/yes/no), got '%s'"):format(key, s), 3)
    end
    return v
  elseif t == "string" then
    return s
  end
  error(("wb.args: key '%s' has a %s default, which the command line cannot set"):format(key, t), 3)
end

--- Merges the command-line key=value pairs over `defaults` and returns a new
-- table; a key not in defaults is an error naming it and the known keys.
-- `resume` is the host's (every wb.teacher / wb.distill run inside the
-- directory it names continues its checkpoint, docs/resume.md): always
-- accepted, and with resume=DIR and no out=..., a script's `out` is DIR.
-- So are wb.arms's keys (jobs, slurm, ntasks, arm: how the arms run),
-- checked here, before any work; a script cannot declare them.
function wb.args(defaults)
  if type(defaults) ~= "table" then
    error("wb.args: expects a table of defaults, got " .. type(defaults), 2)
  end
  for k in pairs(arms.HOST_KEYS) do
    if defaults[k] ~= nil then
      error(("wb.args: key '%s' is the host's (wb.arms: how the arms run); a script cannot declare it"):format(k), 2)
    end
  end
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  local all = core.cli_args()
  local _, host_err = arms.host_args(all)
  if host_err then error("wb.args: " .. host_err, 2) end
  local resume = all.resume
  if resume ~= nil and defaults.resume == nil then
    if defaults.out ~= nil and all.out == nil and booleans[resume:lower()] == nil and resume ~= "" then
      out.out = resume
    end
  end
  local cli = {}
  for k, v in pairs(all) do
    if not arms.HOST_KEYS[k] and not (k == "resume" and defaults.resume == nil) then cli[k] = v end
  end
  for _, k in ipairs(sorted_keys(cli)) do -- sorted: the first bad key is reported deterministically
    if defaults[k] == nil then
      error(("wb.args: unknown command-line key '%s' (known keys: %s)")
        :format(k, table.concat(sorted_keys(defaults), ", ")), 2)
    end
    out[k] = convert(k, cli[k], defaults[k])
  end
  return out
end

-- ---- wb.table -----------------------------------------------------------------
local Table = {}
Table.__index = Table

local table_opts = { format = "string", best = "table", baseline = "any", alpha = "number", level = "number" }
local column_keys = { key = "string", label = "string", format = "string", latex = "string", test = "boolean" }

--- The divergences a script should run: the names in `csv` ("kl, dijs";
-- checked when wb.distill resolves them), or every loaded one when it is
-- empty or nil, in load order.
-- Every name must be a loaded divergence, given once, with no empty entry
-- ("kl,,js", ","): an error naming the entry and the loaded ones otherwise —
-- scripts call this before any training, so a typo costs nothing.
function wb.select_divergences(csv)
  if csv == nil or csv == "" then return core.divergences() end
  local loaded, known = {}, core.divergences()
  for _, n in ipairs(known) do loaded[n] = true end
  local names, seen, i = {}, {}, 0
  for entry in (csv .. ","):gmatch("([^,]*),") do
    i = i + 1
    local name = entry:match("^%s*(.-)%s*$")
    if name == "" then
      error(("divergences = '%s': entry %d is empty"):format(csv, i), 2)
    elseif not loaded[name] then
      error(("divergences = '%s': '%s' is not a loaded divergence (loaded: %s)"):format(csv, name,
            table.concat(known, ", ")), 2)
    elseif seen[name] then
      error(("divergences = '%s': '%s' is given twice (its runs would share one directory)"):format(csv, name), 2)
    end
    seen[name] = true
    names[#names + 1] = name
  end
  return names
end

--- name -> family of every loaded divergence: the family its descriptor
-- declares (wb.plugins()' `family`: "Bregman", "f-div", "score-free" for the
-- shipped ones); for a plugin that declares none, "score-free" when it is
-- score-free, else "plugin".
function wb.divergence_families()
  local family = {}
  for _, p in ipairs(core.plugins("divergence")) do
    family[p.name] = p.family or (p.score_free and "score-free") or "plugin"
  end
  return family
end

--- name -> true for every loaded score-free divergence (w_s ≡ 0, no fake
-- score): the descriptor's own flag, whatever family it declares.
function wb.score_free_divergences()
  local sf = {}
  for _, p in ipairs(core.plugins("divergence")) do
    if p.score_free then sf[p.name] = true end
  end
  return sf
end

local function check_opts(fn, t, allowed)
  for k, v in pairs(t) do
    if allowed[k] == nil then
      error(("%s: unknown key '%s' (known keys: %s)"):format(fn, tostring(k),
        table.concat(sorted_keys(allowed), ", ")), 3)
    end
    if allowed[k] ~= "any" and type(v) ~= allowed[k] then
      error(("%s: key '%s' expects a %s, got %s"):format(fn, k, allowed[k], type(v)), 3)
    end
  end
end

--- A results table. rows: array of tables; columns: array of keys or
-- {key=, label=, format=, latex=, test=} (latex: a raw LaTeX header, not
-- escaped; test = false: no difference markers, e.g. for run times);
-- opts: format (numbers, default "%.4g"), best = {col = "min"|"max"},
-- baseline (a row: its index, or the value of its first column, e.g. "kl"),
-- alpha (the test's level, default 0.05), level (the intervals', 0.95).
--
-- Seeds: a cell may hold an array of numbers, one per seed in seed order
-- (wb.stats.merge makes such rows). It shows as mean ± sample std; best
-- compares means; the Markdown adds a table of the 95 % intervals and a note
-- saying how they and the markers were computed; the CSV has the mean and,
-- beside it, _std, _lo, _hi, _n (and _p with a baseline). With a baseline,
-- a cell whose seeds differ from the baseline row's (paired two-sided
-- t-test over seeds, p < alpha, the same number of seeds) ends in "†".
function wb.table(rows, columns, opts)
  if type(rows) ~= "table" then error("wb.table: rows must be a table, got " .. type(rows), 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("wb.table: opts must be a table, got " .. type(opts), 2) end
  check_opts("wb.table", opts, table_opts)
  if columns == nil then -- every key that appears in a row, sorted
    local seen = {}
    for _, r in ipairs(rows) do for k in pairs(r) do seen[k] = true end end
    columns = sorted_keys(seen)
  end
  if type(columns) ~= "table" then error("wb.table: columns must be a table, got " .. type(columns), 2) end
  local cols = {}
  for i, c in ipairs(columns) do
    if type(c) == "string" then
      cols[i] = { key = c, label = c }
    elseif type(c) == "table" then
      check_opts("wb.table: column " .. i, c, column_keys)
      if c.key == nil then error(("wb.table: column %d has no key"):format(i), 2) end
      cols[i] = { key = c.key, label = c.label or c.key, format = c.format, latex = c.latex, test = c.test }
    else
      error(("wb.table: column %d must be a key or a {key=, label=} table, got %s"):format(i, type(c)), 2)
    end
  end
  local by_key = {}
  for _, c in ipairs(cols) do by_key[c.key] = c end
  for k, how in pairs(opts.best or {}) do
    if by_key[k] == nil then error(("wb.table: best: '%s' is not a column"):format(tostring(k)), 2) end
    if how ~= "min" and how ~= "max" then
      error(("wb.table: best: column '%s' expects \"min\" or \"max\", got %s"):format(k, tostring(how)), 2)
    end
  end
  for i, r in ipairs(rows) do
    if type(r) ~= "table" then error(("wb.table: row %d is a %s, not a table"):format(i, type(r)), 2) end
    for _, c in ipairs(cols) do
      local v = r[c.key]
      if type(v) == "table" then
        if #v == 0 then error(("wb.table: row %d, column '%s': an empty array (want one number per seed)"):format(i, c.key), 2) end
        for j, x in ipairs(v) do
          if type(x) ~= "number" then
            error(("wb.table: row %d, column '%s': seed %d is a %s, not a number"):format(i, c.key, j, type(x)), 2)
          end
        end
      end
    end
  end
  local alpha, level = opts.alpha or 0.05, opts.level or 0.95
  if not (alpha > 0 and alpha < 1) then error(("wb.table: alpha = %s: want 0 < alpha < 1"):format(alpha), 2) end
  if not (level > 0 and level < 1) then error(("wb.table: level = %s: want 0 < level < 1"):format(level), 2) end
  local baseline = opts.baseline
  if baseline ~= nil then
    local found
    if math.type(baseline) == "integer" then
      found = rows[baseline] and baseline
    elseif type(baseline) == "string" and cols[1] then
      for i, r in ipairs(rows) do if r[cols[1].key] == baseline then found = found or i end end
    end
    if not found then
      error(("wb.table: baseline = %s: no such row (a row index, or a value of the first column '%s')")
            :format(tostring(baseline), cols[1] and cols[1].key or "?"), 2)
    end
    baseline = found
  end
  return setmetatable({ rows = rows, columns = cols, format = opts.format or "%.4g",
                        best = opts.best or {}, baseline = baseline, alpha = alpha, level = level }, Table)
end

-- A cell holding one number per seed.
local function seeded(v) return type(v) == "table" end

-- The summary of a seeded cell (cached per table: tables are immutable).
function Table:_summary(v)
  self._summaries = self._summaries or setmetatable({}, { __mode = "k" })
  local s = self._summaries[v]
  if s == nil then
    local finite = true
    for _, x in ipairs(v) do if x ~= x or x == math.huge or x == -math.huge then finite = false end end
    if finite then
      s = stats.summary(v, self.level)
    else -- a diverged seed: the mean is what it is, no spread or interval
      local sum = 0
      for _, x in ipairs(v) do sum = sum + x end
      s = { n = #v, mean = sum / #v, std = 0 / 0, lo = 0 / 0, hi = 0 / 0 }
    end
    self._summaries[v] = s
  end
  return s
end

-- The value a seeded cell stands for when compared (best, sorting): its mean.
function Table:_value(v)
  if seeded(v) then return self:_summary(v).mean end
  return v
end

-- p of the paired test of row i's cell against the baseline's, or nil when
-- there is no test to make (no baseline, this is it, one seed, unequal counts).
function Table:_p(col, i)
  if self.baseline == nil or i == self.baseline or col.test == false then return nil end
  local v, b = self.rows[i][col.key], self.rows[self.baseline][col.key]
  if not (seeded(v) and seeded(b)) or #v ~= #b or #v < 2 then return nil end
  for j = 1, #v do
    if v[j] ~= v[j] or b[j] ~= b[j] or math.abs(v[j]) == math.huge or math.abs(b[j]) == math.huge then return nil end
  end
  return stats.paired(v, b).p
end

-- Does any cell hold seeds? (Then the Markdown carries intervals and a note.)
function Table:_has_seeds()
  for _, r in ipairs(self.rows) do
    for _, c in ipairs(self.columns) do if seeded(r[c.key]) then return true end end
  end
  return false
end

-- The cell text for display (Markdown, LaTeX): integers as integers, other
-- numbers through the column's or the table's format.
function Table:_cell(col, v, format)
  if v == nil then return "" end
  if seeded(v) then
    local s = self:_summary(v)
    local f = col.format or self.format
    if s.n == 1 then return f:format(s.mean) end
    local pm = format == "tex" and " $\\pm$ " or " ± "
    -- a column without a format of its own: the spread to two digits
    local fs = col.format or "%.2g"
    return f:format(s.mean) .. pm .. (s.std == s.std and fs:format(s.std) or "?")
  end
  if math.type(v) == "integer" and col.format == nil then return tostring(v) end
  if type(v) == "number" then return (col.format or self.format):format(v) end
  return tostring(v)
end

-- Is cell (row r, column c) the best of its column? Ties are all bold.
-- Seeded cells compare by their means.
function Table:_is_best(col, v)
  local how = self.best[col.key]
  v = self:_value(v)
  if how == nil or type(v) ~= "number" or v ~= v then return false end
  for _, r in ipairs(self.rows) do
    local o = self:_value(r[col.key])
    if type(o) == "number" and o == o and ((how == "min" and o < v) or (how == "max" and o > v)) then
      return false
    end
  end
  return true
end

-- A column is numeric (right-aligned) when every present value is a number
-- (or one number per seed).
function Table:_numeric(col)
  local any = false
  for _, r in ipairs(self.rows) do
    local v = r[col.key]
    if v ~= nil then
      if type(v) ~= "number" and not seeded(v) then return false end
      any = true
    end
  end
  return any
end

-- Does the column hold seeds anywhere? (CSV: its _std, _lo, _hi, _n columns.)
function Table:_seeded_column(col)
  for _, r in ipairs(self.rows) do if seeded(r[col.key]) then return true end end
  return false
end

-- CSV keeps full precision (the shortest %g that reads back the same).
local function csv_number(v)
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v then return "nan" end
  for digits = 15, 17 do
    local s = ("%." .. digits .. "g"):format(v)
    if tonumber(s) == v then return s end
  end
  return ("%.17g"):format(v)
end

-- The columns and cells as the C renderer (host/report/table_render.c, via
-- wb.core.render_table) takes them: display text (csv: full precision, no
-- bold), right-aligned numeric columns, the best value of a column bold,
-- "†" on a cell that differs from the baseline row's.
function Table:_render(format)
  local cols, rows = {}, {}
  local csv_extra = {}
  for _, c in ipairs(self.columns) do
    cols[#cols + 1] = { label = c.label, latex = c.latex, numeric = self:_numeric(c) }
    if format == "csv" and self:_seeded_column(c) then
      csv_extra[c.key] = true
      for _, suffix in ipairs{ "_std", "_lo", "_hi", "_n" } do cols[#cols + 1] = { label = c.label .. suffix, numeric = true } end
      if self.baseline then cols[#cols + 1] = { label = c.label .. "_p", numeric = true } end
    end
  end
  local function num(x) return x == nil and "" or csv_number(x) end
  for i, r in ipairs(self.rows) do
    local cells = {}
    for _, c in ipairs(self.columns) do
      local v = r[c.key]
      if format == "csv" then
        if seeded(v) then
          local s = self:_summary(v)
          cells[#cells + 1] = num(s.mean)
          if s.n > 1 then
            for _, x in ipairs{ s.std, s.lo, s.hi } do cells[#cells + 1] = num(x) end
          else
            for _ = 1, 3 do cells[#cells + 1] = "" end
          end
          cells[#cells + 1] = tostring(s.n)
          if self.baseline then cells[#cells + 1] = num(self:_p(c, i)) end
        else
          cells[#cells + 1] = v == nil and "" or type(v) == "number" and csv_number(v) or tostring(v)
          if csv_extra[c.key] then
            for _ = 1, self.baseline and 5 or 4 do cells[#cells + 1] = "" end
          end
        end
      else
        local text = self:_cell(c, v, format)
        local p = self:_p(c, i)
        local marked = p ~= nil and p < self.alpha
        if marked then text = text .. (format == "tex" and "$^\\dagger$" or " †") end
        local bold = self:_is_best(c, v)
        if bold or seeded(v) then
          cells[#cells + 1] = { text, bold = bold, raw = format == "tex" and seeded(v) or nil }
        else
          cells[#cells + 1] = text
        end
      end
    end
    rows[i] = cells
  end
  return core.render_table(format, cols, rows)
end

-- The note under a table with seeds: what ± is, how the intervals and the
-- markers were computed.
function Table:notes()
  if not self:_has_seeds() then return "" end
  local n = {}
  for _, r in ipairs(self.rows) do
    for _, c in ipairs(self.columns) do
      local v = r[c.key]
      if seeded(v) then n[#v] = true end
    end
  end
  local counts = {}
  for k in pairs(n) do counts[#counts + 1] = k end
  table.sort(counts)
  local parts = { ("Mean ± sample std over %s seeds; %g %% intervals of the mean: mean ± t(%g, n−1)·std/√n.")
                  :format(table.concat(counts, "/"), self.level * 100, 0.5 + 0.5 * self.level) }
  if self.baseline then
    local label = self.columns[1] and tostring(self.rows[self.baseline][self.columns[1].key]) or tostring(self.baseline)
    parts[#parts + 1] = ("† differs from %s at p < %g: two-sided paired t-test over seeds (seed i of both rows " ..
                         "shares the seed, the teacher and the data), no correction for multiple comparisons.")
                        :format(label, self.alpha)
  end
  return table.concat(parts, " ")
end

-- The intervals as a table of their own: the label columns (those without
-- seeds) and "[lo, hi]" for every seeded column.
function Table:intervals()
  local cols, rows = {}, {}
  for _, c in ipairs(self.columns) do
    local label = self:_seeded_column(c) and c.label .. " (" .. ("%g"):format(self.level * 100) .. " %)" or c.label
    cols[#cols + 1] = { label = label, latex = c.latex, numeric = self:_numeric(c) }
  end
  for i, r in ipairs(self.rows) do
    local cells = {}
    for _, c in ipairs(self.columns) do
      local v = r[c.key]
      if seeded(v) then
        local s = self:_summary(v)
        local f = c.format or self.format
        cells[#cells + 1] = s.n > 1 and s.lo == s.lo and ("[" .. f:format(s.lo) .. ", " .. f:format(s.hi) .. "]") or ""
      else
        cells[#cells + 1] = self:_cell(c, v, "md")
      end
    end
    rows[i] = cells
  end
  return core.render_table("md", cols, rows)
end

--- Markdown (GitHub pipe table), columns padded so it reads in a terminal;
-- with seeds, the note and the intervals table follow.
function Table:markdown()
  local text = self:_render("md")
  if self:_has_seeds() then text = text .. "\n" .. self:notes() .. "\n\n" .. self:intervals() end
  return text
end

--- LaTeX tabular with booktabs rules (\usepackage{booktabs}); the best value
-- of a column in bold; with seeds, the note follows as LaTeX comment lines.
function Table:latex()
  local text = self:_render("tex")
  if self:_has_seeds() then text = text .. "% " .. self:notes() .. "\n" end
  return text
end

--- CSV (RFC 4180 quoting, "\n" line ends), header row of column labels.
function Table:csv() return self:_render("csv") end

--- Markdown to stdout.
function Table:print()
  io.write(self:markdown())
  return self
end

Table.__tostring = Table.markdown

local writers = { md = "markdown", tex = "latex", csv = "csv" }

--- Writes basepath.md / .tex / .csv (default all three), each atomically
-- (wb.core.write_file: a temporary file renamed over the target), creating
-- missing parent folders only below a folder the script owns (the current
-- directory, or one made with wb.mkdir; docs/lua.md, "Reports").
function Table:write(basepath, formats)
  if type(basepath) ~= "string" then error("Table:write: basepath must be a string", 2) end
  formats = formats or { "md", "tex", "csv" }
  for _, ext in ipairs(formats) do
    local method = writers[ext]
    if method == nil then
      error(("Table:write: unknown format '%s' (known: md, tex, csv)"):format(tostring(ext)), 2)
    end
    local ok, err = core.write_file(basepath .. "." .. ext, self[method](self))
    if not ok then error("Table:write: " .. err, 2) end
  end
  return self
end

wb.Table = Table
wb.stats = stats

-- ---- wb.arms ------------------------------------------------------------------------
--- An experiment's independent arms: run here, on local workers (jobs=N) or
-- as a Slurm job array (slurm=...), read back by `workbench table FILE.lua`
-- (scripts/lua/wb/arms.lua; docs/lua.md, "Arms").
wb.arms = arms.run

return wb
