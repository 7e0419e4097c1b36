# SPDX-License-Identifier: MIT
"""work.py: a CPython workload for bench/runtimes.sh: objects of every size made and dropped
(dicts, lists, strings, tuples, JSON, a few reference cycles). An argument sets the number of
rounds (12): fewer for instruction counts under valgrind."""
import json
import sys

total = 0
for rnd in range(int(sys.argv[1]) if len(sys.argv) > 1 else 12):
    rows = [{"id": i, "name": "row%d" % i, "tags": [i % 7, i % 11], "score": i / 3}
            for i in range(20000)]
    text = json.dumps(rows)
    back = json.loads(text)
    index = {r["name"]: r for r in back}
    words = " ".join(r["name"] for r in back).split()
    total += len(text) + len(index) + len(set(words)) + sum(len(w) for w in words)
    for i in range(2000):
        a = [i, None]
        a[1] = a  # a cycle: the collector's work
print(total)
