-- scripts/lua/wb/arms.lua — wb.arms: an experiment's independent arms (a
-- list of named configurations and a function that runs one), run in this
-- process, on N local worker processes, or as a Slurm job array, with the
-- same report in every case (docs/lua.md, "Arms").
--
--   local results = wb.arms{
--     name  = "quickstart",            -- messages, Slurm job names
--     out   = args.out,                -- arm X's result: OUT/arms/X.json (its log: OUT/arms/X.log)
--     arms  = { {name = "kl", divergence = "kl"}, ... },   -- JSON-able, names unique, [A-Za-z0-9._-]+
--     setup = function() return {teacher = ...} end,      -- shared by the arms: made once, loaded elsewhere
--     prepare = function(shared) ... end,                  -- optional: warm caches the arms share
--     run   = function(arm, shared) return {...} end,      -- one arm; a JSON-able table (wb/json.lua)
--     jobs  = "auto",                  -- optional default of jobs= (1: in this process)
--     report_args = { "baseline" },    -- optional: command-line keys that change only the report
--   }
--   -- results[i] = {name = ..., arm = <its table>, result = ...} in the arms' order,
--   -- results.by_name[name] = that arm's result
--
-- Where each piece runs, by the command line's host keys (wb.args accepts
-- them in every script; `workbench run --jobs N` is jobs=N):
--   (none), jobs=1   here: setup, prepare, every arm one after the other
--   jobs=N | auto    here: setup, prepare; then N workers at a time, each
--                    `workbench run FILE.lua <the same pairs> arm=NAME`
--   slurm=OPTIONS    here: nothing but sbatch: a setup job (arm=setup), a
--                    job array of the arms (arm=<name> per task, after the
--                    setup), a table job (`workbench table FILE.lua`, after
--                    the array); ntasks=N: each arm an MPI job under srun
--   arm=NAME         one arm: setup loaded (wb.core.load_only: its runs
--                    must be finished, never trained), run, result written,
--                    the script ends there with success (wb.core.done)
--   arm=setup        setup and prepare only, then the script ends
--   workbench table  no arm runs: every result is read from OUT/arms
-- Every mode that runs arms writes OUT/arms/<name>.json (atomic: temporary
-- file + rename), and the results are always read back from those files,
-- so the report code after wb.arms sees the same values in every mode.
--
-- Fresh or continued: without resume every arm runs again and its old
-- result is removed first; with resume=DIR holding OUT (or resume=true) an
-- arm whose result is complete is skipped. Complete: the file parses, names
-- its arm and records the same key — the script's CRC-32, the command
-- line's pairs (host keys, resume, out and the spec's report_args aside),
-- the arm's configuration and the commit. report_args name the keys that
-- only shape the report (a table's baseline row): `workbench table FILE.lua
-- ... baseline=dijs` then reads the results that baseline=rkl wrote.
local core = require "wb.core"
local json = require "wb.json"

local arms = {}

local FORMAT = "wb.arms/1"
local NAME_PATTERN = "^[A-Za-z0-9._-]+$"
local HOST_KEYS = { arm = true, jobs = true, ntasks = true, slurm = true }
arms.HOST_KEYS = HOST_KEYS

-- `workbench table FILE.lua` only reads results: nothing may train, whatever
-- the script does around wb.arms.
if core.command() == "table" then
  core.load_only("workbench table builds the report from the arms' results (OUT/arms/*.json) and trains nothing")
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function integer(s)
  local n = tonumber(s)
  return n and math.tointeger(n)
end

-- sbatch options wb.arms sets on its own jobs; the user's must not fight them
local OWN_SBATCH = { ["--array"] = true, ["-a"] = true, ["--dependency"] = true, ["-d"] = true,
                     ["--parsable"] = true, ["--output"] = true, ["-o"] = true, ["--error"] = true,
                     ["-e"] = true, ["--job-name"] = true, ["-J"] = true, ["--ntasks"] = true, ["-n"] = true,
                     ["--chdir"] = true, ["-D"] = true, ["--wrap"] = true }

--- The host keys of the command line pairs `cli` (strings), checked:
-- {jobs = n | "auto", slurm = options, ntasks = n, arm = name}, or nil and
-- a message naming the key. wb.args calls it before any work.
function arms.host_args(cli)
  local h = {}
  if cli.jobs ~= nil then
    h.jobs = cli.jobs == "auto" and "auto" or integer(cli.jobs)
    if h.jobs == nil or (h.jobs ~= "auto" and h.jobs < 1) then
      return nil, ("jobs = %s: want an integer >= 1 (local worker processes, one arm each at a time; 1: every arm " ..
                   "in this process) or auto (one per core, at most one per arm)"):format(cli.jobs)
    end
  end
  if cli.ntasks ~= nil then
    h.ntasks = integer(cli.ntasks)
    if h.ntasks == nil or h.ntasks < 1 then
      return nil, ("ntasks = %s: want an integer >= 1 (MPI tasks of each arm's Slurm job)"):format(cli.ntasks)
    end
  end
  if cli.arm ~= nil then
    if not cli.arm:match(NAME_PATTERN) then
      return nil, ("arm = '%s': want an arm's name ([A-Za-z0-9._-]+), or setup"):format(cli.arm)
    end
    h.arm = cli.arm
  end
  if cli.slurm ~= nil then
    for word in cli.slurm:gmatch("%S+") do
      local option = word:match("^(%-%-?[%w-]+)")
      if option and OWN_SBATCH[option] then
        return nil, ("slurm = '%s': %s is wb.arms's to set on each of its jobs (array, dependencies, logs, names, " ..
                     "folder; ntasks=N gives each arm's job N MPI tasks)"):format(cli.slurm, option)
      end
    end
    h.slurm = cli.slurm
  end
  if h.arm and (h.jobs or h.slurm or h.ntasks) then
    return nil, ("arm = %s runs one arm in this process: it does not go with %s"):format(h.arm,
                 h.jobs and "jobs" or h.slurm and "slurm" or "ntasks")
  end
  if h.jobs and h.slurm then return nil, "jobs and slurm are two ways to run the arms: give one of them" end
  if h.ntasks and not h.slurm then
    return nil, ("ntasks = %s: the MPI tasks of each arm's Slurm job; it goes with slurm (--slurm)"):format(cli.ntasks)
  end
  return h
end

-- ---- the spec ------------------------------------------------------------------------
local SPEC_KEYS = { name = "string", out = "string", arms = "table", run = "function", setup = "function",
                    prepare = "function", jobs = true, report_args = "table" }

local function check_spec(spec)
  if type(spec) ~= "table" then error(("wb.arms: expects a table, got %s"):format(type(spec)), 3) end
  for k, v in pairs(spec) do
    local want = SPEC_KEYS[k]
    if want == nil then
      error(("wb.arms: unknown key '%s' (known keys: %s)"):format(tostring(k),
            table.concat(sorted_keys(SPEC_KEYS), ", ")), 3)
    end
    if want ~= true and type(v) ~= want then
      error(("wb.arms: key '%s' expects a %s, got %s"):format(k, want, type(v)), 3)
    end
  end
  if spec.name == nil or not spec.name:match(NAME_PATTERN) then
    error(("wb.arms: key 'name' = %s: want a name of [A-Za-z0-9._-]+ (messages, Slurm job names)")
          :format(tostring(spec.name)), 3)
  end
  local label = ("wb.arms (%s)"):format(spec.name)
  if spec.out == nil or spec.out == "" then error(label .. ": key 'out' (the output folder) is required", 3) end
  if spec.run == nil then error(label .. ": key 'run' (function(arm, shared) -> result) is required", 3) end
  if spec.jobs ~= nil and spec.jobs ~= "auto" and (math.type(spec.jobs) ~= "integer" or spec.jobs < 1) then
    error(("%s: key 'jobs' = %s: want an integer >= 1 or \"auto\""):format(label, tostring(spec.jobs)), 3)
  end
  if spec.arms == nil or #spec.arms == 0 then error(label .. ": key 'arms' needs at least one arm", 3) end
  for i, k in ipairs(spec.report_args or {}) do
    if type(k) ~= "string" or HOST_KEYS[k] or k == "resume" or k == "out" then
      error(("%s: report_args[%d] = %s: want the name of a script argument (not a host key, resume or out)")
            :format(label, i, tostring(k)), 3)
    end
  end
  local by_name = {}
  for i, arm in ipairs(spec.arms) do
    if type(arm) ~= "table" then error(("%s: arm %d is a %s, not a table"):format(label, i, type(arm)), 3) end
    local name = arm.name
    if type(name) ~= "string" or not name:match(NAME_PATTERN) then
      error(("%s: arm %d: name = %s: want [A-Za-z0-9._-]+ (it names OUT/arms/<name>.json)")
            :format(label, i, tostring(name)), 3)
    end
    if name == "setup" then
      error(("%s: arm %d: 'setup' names the shared setup (arm=setup), not an arm"):format(label, i), 3)
    end
    if by_name[name] then error(("%s: arm name '%s' is given twice (arms %d and %d)"):format(label, name,
                                by_name[name].index, i), 3) end
    local ok, text = pcall(json.encode, arm, ("%s: arm '%s'"):format(label, name))
    if not ok then error(text .. " (an arm is a configuration: numbers, strings, tables of them)", 3) end
    by_name[name] = { index = i, arm = arm, text = text }
  end
  return label, by_name
end

-- ---- files -----------------------------------------------------------------------------
local function result_path(ctx, name) return ("%s/%s.json"):format(ctx.dir, name) end
local function log_path(ctx, name) return ("%s/%s.log"):format(ctx.dir, name) end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- What differs between two keys, for a message.
local function key_difference(was, now)
  if type(was) ~= "table" then return "no key" end
  local parts = {}
  if was.script ~= now.script then parts[#parts + 1] = "the script changed" end
  if was.commit ~= now.commit then parts[#parts + 1] = ("commit %s, now %s"):format(tostring(was.commit), now.commit) end
  local args_was, args_now = type(was.args) == "table" and was.args or {}, now.args
  local seen = {}
  for _, t in ipairs{ args_was, args_now } do
    for k in pairs(t) do
      if not seen[k] and args_was[k] ~= args_now[k] then
        parts[#parts + 1] = ("%s=%s, now %s"):format(k, tostring(args_was[k] or "(unset)"),
                                                    tostring(args_now[k] or "(unset)"))
      end
      seen[k] = true
    end
  end
  if json.encode(was.arm or {}) ~= json.encode(now.arm) then parts[#parts + 1] = "the arm's configuration" end
  return #parts > 0 and table.concat(parts, ", ") or "its key"
end

-- Data parallel (mpirun): rank 0 alone writes the results; every rank reads
-- back what it wrote itself (ctx.written), so no rank waits for a file.
local function remove_result(ctx, name)
  if core.rank() == 0 then os.remove(result_path(ctx, name)) end
end

-- The arm's result record when its file is complete, else nil and why.
local function read_result(ctx, arm)
  local path = result_path(ctx, arm.name)
  local text = ctx.written[arm.name] or read_file(path)
  if not text then return nil, "no " .. path end
  local ok, rec = pcall(json.decode, text, path)
  if not ok then return nil, rec end
  if type(rec) ~= "table" or rec.format ~= FORMAT or rec.arm ~= arm.name or type(rec.result) ~= "table" then
    return nil, ("%s is not a wb.arms result of arm '%s'"):format(path, arm.name)
  end
  local key = ctx.keys[arm.name]
  if json.encode(rec.key or {}) ~= json.encode(key) then
    return nil, ("%s was written for another configuration (%s)"):format(path, key_difference(rec.key, key))
  end
  return rec
end

-- Runs one arm here and writes its result; errors name the arm.
local function run_arm_here(ctx, arm, shared)
  local ok, result = xpcall(ctx.spec.run, function(e)
    return type(e) == "string" and debug.traceback(e, 2) or e
  end, arm, shared)
  if not ok then error(("%s: arm '%s' failed: %s"):format(ctx.label, arm.name, tostring(result)), 0) end
  if type(result) ~= "table" then
    error(("%s: arm '%s': run returned a %s, not a table of results"):format(ctx.label, arm.name, type(result)), 0)
  end
  local text = json.encode(result, ("%s: arm '%s': result"):format(ctx.label, arm.name))
  -- the record's keys in sorted order, as json.encode writes objects
  local record = ('{"arm":%s,"format":%s,"key":%s,"result":%s}\n'):format(json.encode(arm.name),
    json.encode(FORMAT), json.encode(ctx.keys[arm.name]), text)
  local written, err = core.write_file(result_path(ctx, arm.name), record)
  if not written then error(("%s: arm '%s': %s"):format(ctx.label, arm.name, err), 0) end
  if core.world_size() > 1 then ctx.written[arm.name] = record end
end

-- Every arm's result, in the arms' order; an error naming those missing.
local function collect(ctx, hint)
  local results, missing = { by_name = {} }, {}
  for _, arm in ipairs(ctx.spec.arms) do
    local rec, why = read_result(ctx, arm)
    if rec then
      results[#results + 1] = { name = arm.name, arm = arm, result = rec.result }
      results.by_name[arm.name] = rec.result
    else
      missing[#missing + 1] = ("'%s' (%s)"):format(arm.name, why)
    end
  end
  if #missing > 0 then
    error(("%s: no result for %d of %d arms: %s%s"):format(ctx.label, #missing, #ctx.spec.arms,
          table.concat(missing, "; "), hint or ""), 0)
  end
  return results
end

-- ---- setup ---------------------------------------------------------------------------------
local function make_setup(ctx)
  local shared = ctx.spec.setup and ctx.spec.setup() or nil
  if ctx.spec.prepare then ctx.spec.prepare(shared) end
  return shared
end

-- In a process of one arm: the setup's runs are loaded from their finished
-- run directories, never trained (N workers must not train N teachers).
local function load_setup(ctx, arm)
  if not ctx.spec.setup then return nil end
  core.load_only(("arm '%s' runs in a process of its own and loads the setup's runs, never trains them: make them " ..
                  "first (the same command without arm=, or with arm=setup)"):format(arm.name))
  local shared = ctx.spec.setup()
  core.load_only(nil)
  return shared
end

-- Does the command line's resume cover OUT? (the engine's rule for runs:
-- resume=true, or resume=DIR with OUT inside DIR)
local function resume_applies(ctx)
  local v = ctx.cli.resume
  if v == nil or v == "" or v == "false" or v == "0" then return false end
  if v == "true" or v == "1" then return true end
  local want, err = core.realpath(v)
  if not want then error(("%s: resume=%s (command line): %s"):format(ctx.label, v, err), 0) end
  local have = core.realpath(ctx.out)
  if not have then return false end -- OUT does not exist yet: nothing to skip
  return have == want or want == "/" or have:sub(1, #want + 1) == want .. "/"
end

-- ---- workers ----------------------------------------------------------------------------------
-- The command line's pairs a worker gets: the same, minus the host keys
-- that chose this mode (sorted: wb.args does not care about order).
local function worker_pairs(cli)
  local out = {}
  for _, k in ipairs(sorted_keys(cli)) do
    if not HOST_KEYS[k] then out[#out + 1] = k .. "=" .. cli[k] end
  end
  return out
end

-- The line of a worker's log that says why it failed: the workbench's own
-- error line, else the last line that is not empty.
local function failure_line(path)
  local text = read_file(path) or ""
  local found, last
  for line in text:gmatch("[^\n]+") do
    if line:match("^workbench: ") then found = line end
    if line:match("%S") then last = line end
  end
  local line = found or last or "(the log is empty)"
  if #line > 400 then line = line:sub(1, 400) .. " ..." end
  return line
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function run_workers(ctx, todo, jobs)
  local exe, script = core.executable(), core.script_path()
  local pairs_ = worker_pairs(ctx.cli)
  local env, threads = {}, nil
  -- each worker a share of the cores, unless the user chose thread counts
  if os.getenv("OMP_NUM_THREADS") == nil and os.getenv("OPENBLAS_NUM_THREADS") == nil then
    threads = math.max(1, core.cpu_count() // jobs)
    env.OMP_NUM_THREADS = tostring(threads)
  end
  print(("%s: %d arm%s on %d local worker%s%s; logs in %s/<arm>.log"):format(ctx.label, #todo,
        #todo == 1 and "" or "s", math.min(jobs, #todo), math.min(jobs, #todo) == 1 and "" or "s",
        threads and (" (OMP_NUM_THREADS=%d each)"):format(threads) or "", ctx.dir))
  io.stdout:flush()
  local running, next_i, finished, failures = {}, 1, 0, {}
  local function start()
    local arm = todo[next_i]
    next_i = next_i + 1
    local argv = { exe, "run", script }
    for _, p in ipairs(pairs_) do argv[#argv + 1] = p end
    argv[#argv + 1] = "arm=" .. arm.name
    local pid = core.spawn(argv, { log = log_path(ctx, arm.name), env = env })
    running[pid] = { arm = arm, t0 = os.time() }
  end
  -- Every running worker gets one SIGTERM (they are in process groups of
  -- their own, so a terminal's Ctrl-C reached only this process), then is
  -- waited for: it checkpoints and exits 75.
  local function stop_workers()
    for p in pairs(running) do core.kill(p, "TERM") end
    while next(running) do
      local pids = {}
      for p in pairs(running) do pids[#pids + 1] = p end
      running[core.wait(pids, false)] = nil
    end
  end
  local function supervise()
    while next_i <= #todo and count(running) < jobs do start() end
    while next(running) do
      local pids = {}
      for pid in pairs(running) do pids[#pids + 1] = pid end
      local pid, how, code = core.wait(pids)
      if not pid then -- asked to stop (SIGINT / SIGTERM)
        stop_workers()
        error(("%s: stopped by a signal: the running workers were sent SIGTERM and checkpointed; finished arms " ..
               "are kept (re-run with resume=%s to continue)"):format(ctx.label, ctx.out), 0)
      end
      local w = running[pid]
      running[pid] = nil
      finished = finished + 1
      local name, log = w.arm.name, log_path(ctx, w.arm.name)
      if how == "exit" and code == 0 then
        local rec, why = read_result(ctx, w.arm)
        if rec then
          print(("%s: [%d/%d] arm '%s' done (%.0f s)"):format(ctx.label, finished, #todo, name,
                os.difftime(os.time(), w.t0)))
        else
          failures[#failures + 1] = ("arm '%s': exit status 0 but no result (%s), log %s"):format(name, why, log)
        end
      else
        local status = how == "signal" and ("killed by signal %d"):format(code) or ("exit status %d"):format(code)
        if how == "exit" and code == 75 then status = status .. " (stopped by a signal, with a checkpoint)" end
        failures[#failures + 1] = ("arm '%s': %s, log %s: %s"):format(name, status, log, failure_line(log))
        print(("%s: [%d/%d] arm '%s' FAILED (%s; log %s)"):format(ctx.label, finished, #todo, name, status, log))
      end
      io.stdout:flush()
      -- a failed arm costs only itself: the others are independent, and their
      -- results let a resume run only what is missing
      if next_i <= #todo then start() end
    end
  end
  -- Any error here — the stop, or one raised between two waits (the host's
  -- stop hook, a worker that cannot start) — leaves no worker behind.
  local ok, err = pcall(supervise)
  if not ok then
    stop_workers()
    error(err, 0)
  end
  if #failures > 0 then
    error(("%s: %d of %d arm%s failed (the other results are in %s; re-run with resume=%s to run only the arms " ..
           "without one):\n  %s"):format(ctx.label, #failures, #todo, #todo == 1 and "" or "s", ctx.dir, ctx.out,
          table.concat(failures, "\n  ")), 0)
  end
end

-- ---- Slurm ----------------------------------------------------------------------------------------
local function sh_quote(s)
  if s:match("^[%w%./_=:,+-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function shell_words(words)
  local out = {}
  for i, w in ipairs(words) do out[i] = sh_quote(w) end
  return table.concat(out, " ")
end

local function absolute(path)
  local full = core.realpath(path)
  if not full then error(("wb.arms: %s does not exist"):format(path), 0) end
  return full
end

-- One sbatch submission of `script_path`; the job id.
local function sbatch(ctx, sbatch_cmd, options, script_path, dependency)
  local command = ("%s --parsable%s%s %s"):format(sbatch_cmd, options ~= "" and " " .. options or "",
                                                  dependency and " --dependency=afterok:" .. dependency or "",
                                                  sh_quote(script_path))
  local f = io.popen(command, "r")
  local out = f and f:read("a") or ""
  local ok, how, code = true, "exit", 0
  if f then ok, how, code = f:close() else ok = false end
  local id = out:match("^%s*(%d+)")
  if not ok or not id then
    error(("%s: `%s` failed (%s %s): %s"):format(ctx.label, command, tostring(how), tostring(code),
          out ~= "" and out or "no job id printed"), 0)
  end
  return id, command
end

local function submit(ctx, todo, host)
  local sdir = ctx.out .. "/slurm"
  core.mkdir(sdir)
  local exe, script = core.executable(), absolute(core.script_path())
  local cwd, out_abs = absolute("."), absolute(ctx.out)
  local pairs_ = worker_pairs(ctx.cli)
  if ctx.cli.resume == nil then pairs_[#pairs_ + 1] = "resume=" .. out_abs end
  local function run_line(command, extra)
    local words = { exe, command, script }
    for _, p in ipairs(pairs_) do words[#words + 1] = p end
    return shell_words(words) .. (extra or "")
  end
  local header = table.concat({
    "#!/bin/bash",
    "# %s — written by wb.arms for %s (%s): %s",
    "#SBATCH --job-name=%s-%s",
    "#SBATCH --output=%s",
    "#SBATCH --chdir=%s",
  }, "\n") .. "\n"
  local files = {}
  local function write(kind, what, log, body, extra_sbatch)
    local path = ("%s/%s.sbatch"):format(sdir, kind)
    local text = header:format(path, core.script_path(), ctx.spec.name, what, ctx.spec.name, kind, log, cwd) ..
                 (extra_sbatch or "") .. body
    local ok, err = core.write_file(path, text)
    if not ok then error(("%s: %s"):format(ctx.label, err), 0) end
    files[kind] = path
  end
  write("setup", "the shared setup (trained once; the arms load it)", out_abs .. "/slurm/setup-%j.log",
        "exec " .. run_line("run", " arm=setup") .. "\n")
  local names = {}
  for i, arm in ipairs(todo) do names[i] = arm.name end
  local srun = host.ntasks and "srun " or ""
  write("arms", ("one arm per array task (%d)"):format(#todo), out_abs .. "/slurm/arms-%A_%a.log",
        table.concat({
          "arms=(" .. table.concat(names, " ") .. ")",
          'name="${arms[$SLURM_ARRAY_TASK_ID]}"',
          '[ -n "$name" ] || { echo "no arm for SLURM_ARRAY_TASK_ID=$SLURM_ARRAY_TASK_ID" >&2; exit 2; }',
          ('log=%s/arms/"$name".log'):format(sh_quote(out_abs)),
          'echo "arm $name: log $log"',
          'exec >"$log" 2>&1',
          "exec " .. srun .. run_line("run", ' "arm=$name"'),
        }, "\n") .. "\n",
        ("#SBATCH --array=0-%d\n"):format(#todo - 1) .. (host.ntasks and ("#SBATCH --ntasks=%d\n"):format(host.ntasks) or ""))
  write("table", "the table and figures from every arm's result", out_abs .. "/slurm/table-%j.log",
        "exec " .. run_line("table") .. "\n")

  local sbatch_cmd = os.getenv("WB_SBATCH")
  if sbatch_cmd == nil or sbatch_cmd == "" then sbatch_cmd = "sbatch" end
  local setup_id = sbatch(ctx, sbatch_cmd, host.slurm, files.setup, nil)
  local arms_id = sbatch(ctx, sbatch_cmd, host.slurm, files.arms, setup_id)
  local table_id = sbatch(ctx, sbatch_cmd, host.slurm, files.table, arms_id)
  local lines = {
    ("%s: submitted to Slurm (%s%s)"):format(ctx.label, sbatch_cmd, host.slurm ~= "" and " " .. host.slurm or ""),
    ("  setup  job %-10s %s/slurm/setup-%s.log"):format(setup_id, out_abs, setup_id),
    ("  arms   job %-10s %d array task%s%s, each logging to %s/arms/<arm>.log: %s"):format(arms_id, #todo,
      #todo == 1 and "" or "s", host.ntasks and (" of %d MPI tasks"):format(host.ntasks) or "", out_abs,
      table.concat(names, " ")),
    ("  table  job %-10s %s/slurm/table-%s.log (writes the table and figures into %s)"):format(table_id, out_abs,
      table_id, out_abs),
    ("follow:   squeue -j %s,%s,%s"):format(setup_id, arms_id, table_id),
    ("          tail -f %s/slurm/setup-%s.log"):format(out_abs, setup_id),
    ("scripts:  %s/slurm/{setup,arms,table}.sbatch"):format(out_abs),
    "again, running only the arms without a result: the same command (a submission resumes)",
  }
  local text = table.concat(lines, "\n") .. "\n"
  core.write_file(sdir .. "/submitted.txt", text)
  io.write(text)
  io.stdout:flush()
end

-- ---- wb.arms -------------------------------------------------------------------------------------
local function script_crc(path)
  local text = path and read_file(path)
  return text and core.crc32(text) or "unknown"
end

--- Runs (or reads) an experiment's arms; see the header. Returns the
-- results where the report is to be built; in a worker, the Slurm setup job
-- and after a submission the script ends inside (wb.core.done()).
function arms.run(spec)
  local label, by_name = check_spec(spec)
  core.arms_called()
  local cli = core.cli_args()
  local host, err = arms.host_args(cli)
  if not host then error("wb.arms: " .. err, 2) end

  local report_only = {}
  for _, k in ipairs(spec.report_args or {}) do report_only[k] = true end
  local key_args = {}
  for k, v in pairs(cli) do
    if not HOST_KEYS[k] and k ~= "resume" and k ~= "out" and not report_only[k] then key_args[k] = v end
  end
  local ctx = { label = label, spec = spec, out = spec.out, dir = spec.out .. "/arms", cli = cli, keys = {},
                written = {} }
  local key_base = { script = script_crc(core.script_path()), commit = core.commit(), args = key_args }
  for name, entry in pairs(by_name) do
    ctx.keys[name] = { script = key_base.script, commit = key_base.commit, args = key_args, arm = entry.arm }
  end

  if core.command() == "table" then
    local given = host.arm and "arm" or host.jobs and "jobs" or host.slurm and "slurm" or host.ntasks and "ntasks"
    if given then error(("wb.arms: key '%s' does not apply to `workbench table` (it runs no arm)"):format(given), 2) end
    return collect(ctx, (" — run them first (workbench run %s ...; with resume=%s only the missing ones run)")
                         :format(core.script_path() or "FILE.lua", spec.out))
  end

  if host.arm == "setup" then
    make_setup(ctx)
    print(("%s: setup done (the arms load it: arm=NAME)"):format(label))
    io.stdout:flush()
    core.done()
  elseif host.arm then
    local entry = by_name[host.arm]
    if not entry then
      local names = {}
      for i, arm in ipairs(spec.arms) do names[i] = arm.name end
      error(("wb.arms (%s): arm=%s: no such arm (arms: %s; arm=setup: the shared setup only)")
            :format(spec.name, host.arm, table.concat(names, ", ")), 2)
    end
    core.mkdir(ctx.dir)
    if not resume_applies(ctx) then remove_result(ctx, host.arm) end
    local shared = load_setup(ctx, entry.arm)
    run_arm_here(ctx, entry.arm, shared)
    print(("%s: arm '%s' done: %s"):format(label, host.arm, result_path(ctx, host.arm)))
    io.stdout:flush()
    core.done()
  end

  -- the arms to run: all, or under resume those without a complete result;
  -- a Slurm submission always resumes (re-submitting skips complete arms,
  -- and its jobs load the finished setup and continue stopped arms)
  local resume = resume_applies(ctx) or host.slurm ~= nil
  local todo = {}
  for _, arm in ipairs(spec.arms) do
    if not (resume and read_result(ctx, arm)) then todo[#todo + 1] = arm end
  end
  core.mkdir(ctx.dir)
  if not resume then -- a fresh run: no old result may be collected if an arm fails now
    for _, arm in ipairs(todo) do remove_result(ctx, arm.name) end
  elseif #todo < #spec.arms then
    print(("%s: %d of %d arms have a result in %s and are skipped"):format(label, #spec.arms - #todo, #spec.arms,
          ctx.dir))
  end

  if core.world_size() > 1 and (host.slurm or (host.jobs and host.jobs ~= 1 and host.jobs ~= "auto")) then
    error(("wb.arms (%s): %s under mpirun (%d ranks): every arm here is already data parallel; submit arms as MPI " ..
           "jobs with --slurm ... ntasks=N instead"):format(spec.name, host.slurm and "slurm" or "jobs",
           core.world_size()), 2)
  end
  if host.slurm then
    if #todo == 0 then
      print(("%s: every arm has a result: nothing to submit, the table is built here"):format(label))
      return collect(ctx)
    end
    submit(ctx, todo, host)
    core.done()
  end

  local jobs = host.jobs or spec.jobs or 1
  if jobs == "auto" then jobs = math.max(1, math.min(#todo, core.cpu_count())) end
  if core.world_size() > 1 then jobs = 1 end -- under mpirun every arm runs here, on every rank
  if #todo > 0 then
    local shared = make_setup(ctx)
    if jobs == 1 then
      for _, arm in ipairs(todo) do run_arm_here(ctx, arm, shared) end
    else
      shared = nil -- the workers load their own; free ours (a teacher can be large)
      collectgarbage()
      run_workers(ctx, todo, jobs)
    end
  end
  return collect(ctx)
end

return arms
