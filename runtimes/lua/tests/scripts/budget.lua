-- budget.lua: run by hm-lua under a small HM_LIMIT. Each round fills memory until Lua says
-- "not enough memory", catches it, drops the garbage and shows that the state still works.
for round = 1, 3 do
  local keep = {}
  local ok, err = pcall(function()
    for i = 1, 1e8 do keep[i] = ("x"):rep(100) .. i end
  end)
  keep = nil
  collectgarbage()
  local s = {}
  for i = 1, 1000 do s[i] = tostring(i) end
  print(string.format("round %d: %s, recovered: %d", round, ok and "no error" or tostring(err),
    #table.concat(s)))
end
