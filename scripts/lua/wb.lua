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
-- Errors are raised at the caller's line (level 2), with the key at fault
-- named, like every wb.core function does.
local core = require "wb.core"
local arms = require "wb.arms"

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

local table_opts = { format = "string", best = "table" }
local column_keys = { key = "string", label = "string", format = "string", latex = "string" }

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
    if type(v) ~= allowed[k] then
      error(("%s: key '%s' expects a %s, got %s"):format(fn, k, allowed[k], type(v)), 3)
    end
  end
end

--- A results table. rows: array of tables; columns: array of keys or
-- {key=, label=, format=, latex=} (latex: a raw LaTeX header, not escaped);
-- opts: format (numbers, default "%.4g"), best = {col = "min"|"max"}.
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
      cols[i] = { key = c.key, label = c.label or c.key, format = c.format, latex = c.latex }
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
  end
  return setmetatable({ rows = rows, columns = cols, format = opts.format or "%.4g",
                        best = opts.best or {} }, Table)
end

-- The cell text for display (Markdown, LaTeX): integers as integers, other
-- numbers through the column's or the table's format.
function Table:_cell(col, v)
  if v == nil then return "" end
  if math.type(v) == "integer" and col.format == nil then return tostring(v) end
  if type(v) == "number" then return (col.format or self.format):format(v) end
  return tostring(v)
end

-- Is cell (row r, column c) the best of its column? Ties are all bold.
function Table:_is_best(col, v)
  local how = self.best[col.key]
  if how == nil or type(v) ~= "number" or v ~= v then return false end
  for _, r in ipairs(self.rows) do
    local o = r[col.key]
    if type(o) == "number" and o == o and ((how == "min" and o < v) or (how == "max" and o > v)) then
      return false
    end
  end
  return true
end

-- A column is numeric (right-aligned) when every present value is a number.
function Table:_numeric(col)
  local any = false
  for _, r in ipairs(self.rows) do
    local v = r[col.key]
    if v ~= nil then
      if type(v) ~= "number" then return false end
      any = true
    end
  end
  return any
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
-- bold), right-aligned numeric columns, the best value of a column bold.
function Table:_render(format)
  local cols, rows = {}, {}
  for j, c in ipairs(self.columns) do
    cols[j] = { label = c.label, latex = c.latex, numeric = self:_numeric(c) }
  end
  for i, r in ipairs(self.rows) do
    local cells = {}
    for j, c in ipairs(self.columns) do
      local v = r[c.key]
      if format == "csv" then
        cells[j] = v == nil and "" or type(v) == "number" and csv_number(v) or tostring(v)
      else
        local s = self:_cell(c, v)
        cells[j] = self:_is_best(c, v) and { s, bold = true } or s
      end
    end
    rows[i] = cells
  end
  return core.render_table(format, cols, rows)
end

--- Markdown (GitHub pipe table), columns padded so it reads in a terminal.
function Table:markdown() return self:_render("md") end

--- LaTeX tabular with booktabs rules (\usepackage{booktabs}); the best value
-- of a column in bold.
function Table:latex() return self:_render("tex") end

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

-- ---- wb.arms ------------------------------------------------------------------------
--- An experiment's independent arms: run here, on local workers (jobs=N) or
-- as a Slurm job array (slurm=...), read back by `workbench table FILE.lua`
-- (scripts/lua/wb/arms.lua; docs/lua.md, "Arms").
wb.arms = arms.run

return wb
