-- libs.lua: Debian-packaged Lua libraries (lua-lpeg, lua-cjson: C modules; lua-dkjson: Lua).
local lpeg = require("lpeg")
local cjson = require("cjson")
local dkjson = require("dkjson")

-- an arithmetic evaluator from an LPeg grammar
local P, R, S, V, C, Ct = lpeg.P, lpeg.R, lpeg.S, lpeg.V, lpeg.C, lpeg.Ct
local space = S(" ")^0
local number = C(P("-")^-1 * R("09")^1) * space / tonumber
local function op(c) return C(S(c)) * space end
local function fold(t)
  local acc = t[1]
  for i = 2, #t, 2 do
    local o, v = t[i], t[i + 1]
    if o == "+" then acc = acc + v elseif o == "-" then acc = acc - v
    elseif o == "*" then acc = acc * v else acc = acc // v end
  end
  return acc
end
local grammar = P({ "Exp",
  Exp = Ct(V("Term") * (op("+-") * V("Term"))^0) / fold,
  Term = Ct(V("Fact") * (op("*/") * V("Fact"))^0) / fold,
  Fact = number + "(" * space * V("Exp") * ")" * space,
})
for _, e in ipairs({ "1 + 2 * 3", "(1 + 2) * 3", "100 / 7 - 2 * (3 - 10)", "2*2*2*2*2*2*2*2" }) do
  print(e, "=", grammar:match(e))
end
local words = Ct((C(R("az")^1) + 1)^0)
local many = ("alpha beta gamma delta "):rep(5000)
print(#words:match(many))

-- JSON: the same document through both libraries, printed with sorted keys
local doc = { name = "hostmalloc", list = {}, nested = { a = 1, b = { true, false } } }
for i = 1, 2000 do doc.list[i] = { id = i, tag = "t" .. i, score = i / 4 } end
local function canon(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. ":" .. canon(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end
local a = cjson.decode(cjson.encode(doc))
local b = dkjson.decode(dkjson.encode(doc))
print(#canon(a), canon(a) == canon(b), canon(a.nested))
print(cjson.encode({ 1, 2, 3, "x" }), dkjson.encode({ 1, 2, 3, "x" }))
local ok, err = pcall(cjson.decode, "{bad json")
print(ok, err ~= nil)
