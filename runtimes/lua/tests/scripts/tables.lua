-- tables.lua: arrays and hashes growing and shrinking, metatables, weak tables, closures.
local t = {}
for i = 1, 100000 do t[i] = i * i end
local sum = 0
for i = 1, #t do sum = sum + t[i] end
print(#t, sum)
for i = #t, 50001, -1 do t[i] = nil end
print(#t)
for i = 1, 1000 do table.insert(t, 1, -i) end
for _ = 1, 500 do table.remove(t, 1) end
print(#t, t[1], t[#t])

local h = {}
for i = 1, 50000 do h["key" .. i] = i end
local n = 0
for _, v in pairs(h) do n = n + v end
print(n)
for i = 1, 50000, 2 do h["key" .. i] = nil end
n = 0
for _ in pairs(h) do n = n + 1 end
print(n)

local r = {}
local seed = 12345
for i = 1, 20000 do seed = (seed * 1103515245 + 12345) % 2147483648; r[i] = seed end
table.sort(r)
print(r[1], r[10000], r[20000])
table.sort(r, function(a, b) return a > b end)
print(r[1], r[20000])

local Vec = {}
Vec.__index = Vec
Vec.__add = function(a, b) return setmetatable({ x = a.x + b.x, y = a.y + b.y }, Vec) end
Vec.__tostring = function(v) return "(" .. v.x .. "," .. v.y .. ")" end
Vec.__eq = function(a, b) return a.x == b.x and a.y == b.y end
local acc = setmetatable({ x = 0, y = 0 }, Vec)
for i = 1, 1000 do acc = acc + setmetatable({ x = i, y = -i }, Vec) end
print(tostring(acc), acc == setmetatable({ x = 500500, y = -500500 }, Vec))

local weak = setmetatable({}, { __mode = "v" })
for i = 1, 100 do weak[i] = {} end
weak[101] = t
collectgarbage()
local alive = 0
for _ in pairs(weak) do alive = alive + 1 end
print("weak survivors", alive)

local function counter()
  local c = 0
  return function() c = c + 1; return c end
end
local cs = {}
for i = 1, 1000 do cs[i] = counter() end
local total = 0
for i = 1, 1000 do for _ = 1, i % 7 do total = total + cs[i]() end end
print("closures", total)
print(table.unpack({ 1, 2, 3 }), select("#", table.unpack({}, 1, 5)), table.move({ 1, 2, 3 }, 1, 3, 2)[3])
local ok, err = pcall(error, { code = 42 })
print(ok, type(err), err.code)
print(select(2, pcall(function() local x = nil; return x.y end)):match("attempt to index"))
