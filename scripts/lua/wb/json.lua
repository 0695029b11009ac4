-- scripts/lua/wb/json.lua — JSON for the results wb.arms passes between
-- processes (OUT/arms/<arm>.json): Lua values written so that reading them
-- back gives the same values, bit for bit, so a report built from a file
-- is the report built in memory.
--
--   local json = require "wb.json"
--   json.encode(value, where) -> text    -- where names the value in errors ("arm 'kl': result")
--   json.decode(text, source) -> value   -- source names the text in errors (a file name)
--
-- What round-trips exactly:
--   integers     as integers (3), read back as Lua integers
--   floats       with the fewest of 15–17 significant digits that read back
--                the same double, always with a '.' or an exponent (3.0),
--                so they come back as floats; NaN, -NaN, Infinity and
--                -Infinity as those words (what Python's json module reads
--                and writes; the sign of a NaN is kept: it decides whether
--                a table shows "nan" or "-nan")
--   strings      bytes as they are, ", \ and control characters escaped
--   tables       a sequence 1..n as an array, string keys as an object (keys
--                sorted, so the same value gives the same text), the empty
--                table as []
-- Anything else (a function, a userdata such as Samples, mixed or sparse
-- keys, a cycle) is an error naming where it is: `arm 'kl': result.samples:
-- a userdata is not JSON (Samples: convert them with s:totable())`.
local json = {}

local MAX_DEPTH = 200

-- ---- encode ---------------------------------------------------------------------
local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function encode_float(v)
  if v ~= v then return ("%f"):format(v):sub(1, 1) == "-" and "-NaN" or "NaN" end
  if v == math.huge then return "Infinity" end
  if v == -math.huge then return "-Infinity" end
  local s
  for digits = 15, 17 do
    s = ("%." .. digits .. "g"):format(v)
    if tonumber(s) == v then break end
  end
  if not s:find("[%.eEn]") then s = s .. ".0" end -- a float stays a float
  return s
end

-- How the table t is written: "array" (keys 1..n), "object" (string keys)
-- or an error naming the first key that is neither.
local function table_kind(t, where)
  local n, strings, others = #t, 0, nil
  local count = 0
  for k in pairs(t) do
    count = count + 1
    if type(k) == "string" then
      strings = strings + 1
    elseif math.type(k) ~= "integer" or k < 1 or k > n then
      others = others or k
    end
  end
  if count == 0 then return "array" end
  if others ~= nil then
    error(("%s: key %s (a %s) is neither a position 1..%d nor a name: not JSON"):format(where, tostring(others),
          type(others), n), 0)
  end
  if strings == 0 and count == n then return "array" end
  if strings == count then return "object" end
  error(("%s: a table with both positions (1..%d) and names is not JSON"):format(where, n), 0)
end

local function encode_value(v, where, out, depth)
  local t = type(v)
  if t == "number" then
    out[#out + 1] = math.type(v) == "integer" and ("%d"):format(v) or encode_float(v)
  elseif t == "string" then
    out[#out + 1] = encode_string(v)
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "table" then
    if depth > MAX_DEPTH then error(("%s: nested more than %d deep (a cycle?)"):format(where, MAX_DEPTH), 0) end
    if table_kind(v, where) == "array" then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_value(v[i], ("%s[%d]"):format(where, i), out, depth + 1)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ":"
        encode_value(v[k], where .. "." .. k, out, depth + 1)
      end
      out[#out + 1] = "}"
    end
  else
    local hint = ""
    if t == "userdata" then
      local mt = getmetatable(v)
      local name = type(mt) == "table" and mt.__name or nil
      if name == "wb.Samples" then hint = " (Samples: convert them with s:totable())"
      elseif name then hint = (" (%s)"):format(name) end
    end
    error(("%s: a %s is not JSON%s"):format(where, t, hint), 0)
  end
end

--- The JSON text of v; errors name `where` and the path inside it.
function json.encode(v, where)
  local out = {}
  encode_value(v, where or "value", out, 0)
  return table.concat(out)
end

-- ---- decode ---------------------------------------------------------------------
local NAN = math.abs(0 / 0) -- 0/0 is -nan on x86; abs gives the positive one
local words = { ["true"] = true, ["false"] = false, ["null"] = nil, NaN = NAN, ["-NaN"] = -NAN,
                Infinity = math.huge, ["-Infinity"] = -math.huge }
local unescape = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function decoder(text, source)
  local pos = 1

  local function fail(what)
    local line = select(2, text:sub(1, pos):gsub("\n", "")) + 1
    error(("%s: not valid JSON at byte %d (line %d): %s"):format(source, pos, line, what), 0)
  end

  local function skip()
    pos = text:find("[^ \t\r\n]", pos) or #text + 1
  end

  local value

  local function string_value()
    local parts, i = {}, pos + 1
    while true do
      local j = text:find('["\\%c]', i)
      if not j then pos = #text + 1; fail("unterminated string") end
      local c = text:sub(j, j)
      parts[#parts + 1] = text:sub(i, j - 1)
      if c == '"' then
        pos = j + 1
        return table.concat(parts)
      elseif c == "\\" then
        local e = text:sub(j + 1, j + 1)
        if e == "u" then
          local hex = text:match("^%x%x%x%x", j + 2)
          if not hex then pos = j; fail("\\u needs four hex digits") end
          local code = tonumber(hex, 16)
          i = j + 6
          if code >= 0xD800 and code <= 0xDBFF then -- a surrogate pair
            local low = text:match("^\\u(%x%x%x%x)", i)
            local lo = low and tonumber(low, 16)
            if not lo or lo < 0xDC00 or lo > 0xDFFF then pos = j; fail("unpaired surrogate") end
            code = 0x10000 + ((code - 0xD800) << 10) + (lo - 0xDC00)
            i = i + 6
          end
          parts[#parts + 1] = utf8.char(code)
        elseif unescape[e] then
          parts[#parts + 1] = unescape[e]
          i = j + 2
        else
          pos = j; fail("unknown escape \\" .. e)
        end
      else
        pos = j; fail("control character in a string")
      end
    end
  end

  local function number_or_word()
    local word = text:match("^-?%a+", pos)
    if word then
      local v = words[word]
      if v == nil and word ~= "null" then fail("unexpected '" .. word .. "'") end
      pos = pos + #word
      return v
    end
    local s = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    local v = s and tonumber(s)
    if v == nil then fail("unexpected '" .. text:sub(pos, pos) .. "'") end
    pos = pos + #s
    return v
  end

  function value(depth)
    if depth > MAX_DEPTH then fail(("nested more than %d deep"):format(MAX_DEPTH)) end
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        skip()
        if text:sub(pos, pos) ~= '"' then fail("expected a name in quotes") end
        local k = string_value()
        skip()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value(depth + 1)
        skip()
        c = text:sub(pos, pos)
        pos = pos + 1
        if c == "}" then return t end
        if c ~= "," then pos = pos - 1; fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local t, n = {}, 0
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        n = n + 1
        t[n] = value(depth + 1)
        skip()
        c = text:sub(pos, pos)
        pos = pos + 1
        if c == "]" then return t end
        if c ~= "," then pos = pos - 1; fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return string_value()
    elseif c == "" then
      fail("unexpected end")
    end
    return number_or_word()
  end

  return function()
    local v = value(0)
    skip()
    if pos <= #text then fail("text after the value") end
    return v
  end
end

--- The Lua value of the JSON text; errors name `source` and the byte.
function json.decode(text, source)
  if type(text) ~= "string" then error(("%s: expected JSON text, got a %s"):format(source or "json", type(text)), 2) end
  return decoder(text, source or "json")()
end

return json
