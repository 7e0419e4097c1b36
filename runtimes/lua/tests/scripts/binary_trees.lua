-- binary_trees.lua: allocation-heavy tree building and walking (the collector works hard).
local function make(depth)
  if depth == 0 then return {} end
  depth = depth - 1
  return { make(depth), make(depth) }
end

local function check(tree)
  if tree[1] == nil then return 1 end
  return 1 + check(tree[1]) + check(tree[2])
end

local maxdepth = tonumber(arg and arg[1]) or 14
local longlived = make(maxdepth)
for depth = 4, maxdepth, 2 do
  local iterations = 1 << (maxdepth - depth + 4)
  local sum = 0
  for _ = 1, iterations do sum = sum + check(make(depth)) end
  print(string.format("%d trees of depth %d: check %d", iterations, depth, sum))
end
print(string.format("long lived tree of depth %d: check %d", maxdepth, check(longlived)))
