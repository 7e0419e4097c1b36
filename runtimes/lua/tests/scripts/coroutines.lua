-- coroutines.lua: many coroutines (each with its own stack), generators, pipelines.
local function gen(n)
  return coroutine.wrap(function() for i = 1, n do coroutine.yield(i) end end)
end
local function filter(pred, src)
  return coroutine.wrap(function()
    for v in src do if pred(v) then coroutine.yield(v) end end
  end)
end
local function map(f, src)
  return coroutine.wrap(function() for v in src do coroutine.yield(f(v)) end end)
end
local s = 0
for v in map(function(x) return x * x end, filter(function(x) return x % 3 == 0 end, gen(30000))) do
  s = s + v
end
print("pipeline", s)

local cos = {}
for i = 1, 5000 do
  cos[i] = coroutine.create(function(a)
    local acc = a
    while true do acc = acc + coroutine.yield(acc) end
  end)
end
local total = 0
for round = 1, 5 do
  for i = 1, #cos do
    local _, v = coroutine.resume(cos[i], round == 1 and i or 1)
    total = total + v
  end
end
print("resumes", total)

local function deep(n) if n == 0 then return 0 end return 1 + deep(n - 1) end
local co = coroutine.create(function() return deep(50000) end)
print("deep", coroutine.resume(co))
print(coroutine.status(co), coroutine.isyieldable())
local ok, msg = coroutine.resume(coroutine.create(function() error("inside") end))
print(ok, (msg:gsub("^.-:%d+: ", "")))
print(coroutine.close(coroutine.create(function() end)))
