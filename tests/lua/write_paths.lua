-- tests/lua/write_paths.lua — figures and tables create their missing
-- folders only below a folder the script owns (issue 10, defect 11): the
-- current directory, or one made with wb.mkdir. Below `dir` (made here with
-- wb.mkdir) Table:write and wb.scatter create "tables/", "figs/deep/";
-- below `outside` (a folder made behind wb's back, outside the current
-- directory) and for a missing part with "..", both are refused naming the
-- folder, and nothing is created. Args: dir, outside = two fresh folders.
local wb = require "wb"
local args = wb.args{ dir = "", outside = "" }
assert(args.dir ~= "" and args.outside ~= "", "dir= and outside= are required")

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end
local function is_dir(path) return os.execute("test -d '" .. path .. "'") == true end

os.execute("rm -rf '" .. args.dir .. "' '" .. args.outside .. "' && mkdir -p '" .. args.outside .. "'")
local pwd = io.popen("pwd -P"):read("l")
local real_outside = io.popen("cd '" .. args.outside .. "' && pwd -P"):read("l")
if real_outside:sub(1, #pwd + 1) == pwd .. "/" then
  print("SKIP: outside= (" .. real_outside .. ") lies inside the current directory " .. pwd)
  return
end

local s = wb.samples{ { 0, 0 }, { 1, 1 } }
local tab = wb.table({ { a = 1 } }, { "a" })
local failures = 0
local function expect_ok(what, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then print("ok   " .. what) else
    print("FAIL " .. what .. ": " .. tostring(err))
    failures = failures + 1
  end
end
local function expect_refused(what, folder, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then
    print("FAIL " .. what .. " was accepted")
    failures = failures + 1
  elseif not err:find(folder, 1, true) then
    print("FAIL " .. what .. ": the message does not name '" .. folder .. "': " .. err)
    failures = failures + 1
  else
    print("ok   " .. what .. " refused: " .. err:match("[^\n]*"))
  end
  if is_dir(folder) then
    print("FAIL " .. what .. ": '" .. folder .. "' was created anyway")
    failures = failures + 1
  end
end

-- below a folder made with wb.mkdir: created, as before
wb.mkdir(args.dir)
expect_ok("Table:write below wb.mkdir's folder", function() tab:write(args.dir .. "/tables/main", { "md" }) end)
if not exists(args.dir .. "/tables/main.md") then
  print("FAIL tables/main.md not written")
  failures = failures + 1
end
expect_ok("wb.scatter below wb.mkdir's folder", wb.scatter, args.dir .. "/figs/deep/a.png", s)
if not exists(args.dir .. "/figs/deep/a.png") then
  print("FAIL figs/deep/a.png not written")
  failures = failures + 1
end
-- into an existing folder anywhere: nothing to create, written
expect_ok("wb.scatter into an existing folder", wb.scatter, args.outside .. "/a.png", s)
expect_ok("Table:write into an existing folder", function() tab:write(args.outside .. "/t", { "csv" }) end)

-- a missing folder outside what the script owns: refused
expect_refused("Table:write into a new folder outside", args.outside .. "/new",
               function() tab:write(args.outside .. "/new/t", { "md" }) end)
expect_refused("wb.scatter into a new folder outside", args.outside .. "/new2/deeper", wb.scatter,
               args.outside .. "/new2/deeper/a.png", s)
expect_refused("wb.plot_lines into a new folder outside", args.outside .. "/new3", wb.plot_lines,
               args.outside .. "/new3/l.png", { series = { { name = "x", y = { 1, 2 } } } })
-- "..": would lead out of the owned folder
expect_refused("wb.scatter with '..' in the missing part", args.dir .. "/x/../../escaped", wb.scatter,
               args.dir .. "/x/../../escaped/a.png", s)
for _, made in ipairs{ args.dir .. "/x", args.dir .. "/../escaped" } do
  if is_dir(made) then
    print("FAIL '..' path: " .. made .. " was created")
    failures = failures + 1
  end
end

-- wb.mkdir itself creates what it is told, and then figures may go below it
wb.mkdir(args.outside .. "/made")
expect_ok("wb.scatter below a folder made with wb.mkdir outside", wb.scatter, args.outside .. "/made/sub/a.png", s)

if failures > 0 then error(failures .. " folder rule check(s) failed") end
print("folder rules hold")
