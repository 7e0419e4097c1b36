# SPDX-License-Identifier: MIT
# bench/programs/dict.py: an everyday Python shape for bench/public.sh (python-dict): a dict of
# 600,000 string keys holding lists and tuples, sorted by a string field, then 300,000 short
# lists of 0..49 integers.
d = {}
for i in range(600000):
    d[str(i)] = [i, str(i) * 3, (i, i + 1)]
s = sorted(d.items(), key=lambda kv: kv[1][1])
x = [list(range(i % 50)) for i in range(300000)]
print(len(s), len(x))
