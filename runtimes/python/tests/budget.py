# SPDX-License-Identifier: MIT
"""budget.py: run by hm-python3 under a small HM_LIMIT. Each round fills memory until Python
raises MemoryError, drops it, and shows the interpreter still works."""
import gc

for rnd in range(1, 4):
    keep = []
    try:
        while True:
            keep.append(bytes(10000) + str(len(keep)).encode())
    except MemoryError:
        got = "MemoryError"
    else:
        got = "no error"
    n = len(keep)
    keep = None
    gc.collect()
    s = ",".join(str(i) for i in range(1000))
    print(f"round {rnd}: {got} after {'many' if n > 100 else n} blocks, recovered: {len(s)}")
