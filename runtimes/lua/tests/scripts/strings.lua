-- strings.lua: string building, patterns, formatting, utf8, string buffers of many sizes.
local words = {}
for w in ("the quick brown fox jumps over the lazy dog again and again"):gmatch("%a+") do
  words[#words + 1] = w
end
print(#words, table.concat(words, "|"))

local counts = {}
for _, w in ipairs(words) do counts[w] = (counts[w] or 0) + 1 end
local keys = {}
for k in pairs(counts) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do io.write(k, "=", counts[k], " ") end
print()

-- growing strings: every size from tiny to large goes through the allocator
local s = ""
for i = 1, 2000 do s = s .. string.char(65 + i % 26) end
print(#s, s:sub(1, 30), s:sub(-10))
local big = ("abc"):rep(100000, ",")
print(#big, select(2, big:gsub(",", ",")))

print(string.format("%5.2f|%-8s|%x|%q", math.pi, "left", 48879, "quote\n\"me\""))
print(("%d items cost %.2f"):format(3, 3 * 1.25))
print(("Hello World"):upper(), ("Hello World"):lower(), ("abc"):reverse(), ("x"):byte())

local csv = "name,age,city\nann,31,oslo\nbob,27,rome\n"
for name, age, city in csv:gmatch("(%w+),(%d+),(%w+)\n") do print(name, tonumber(age) + 1, city) end

print(utf8.char(72, 228, 8364, 128512), utf8.len("häll€"))
for p, c in utf8.codes("aé€") do io.write(p, ":", c, " ") end
print()

local parts = {}
for i = 1, 50000 do parts[i] = tostring(i * 7) end
local joined = table.concat(parts, ";")
print(#joined, joined:sub(1, 20), joined:find("3500;", 1, true))
print(string.pack(">I4", 0x01020304):byte(1, -1))
print(("x = %s"):format(tostring(nil)), tostring(1e100), 2^53, 7 // 2, 7 % -3, -7 // 2.0)
