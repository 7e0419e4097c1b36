# SPDX-License-Identifier: MIT
"""compare_junit.py REF HM: the JUnit reports of two runs of Python's test runner must list
the same test cases with the same outcome (passed, skipped, failed or error)."""
import sys
import xml.etree.ElementTree as ET


def outcomes(path):
    result = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("classname", "") + "." + case.get("name", "")
        state = "passed"
        for tag in ("skipped", "failure", "error"):
            if case.find(tag) is not None:
                state = tag
        result[name] = state
    return result


ref, hm = outcomes(sys.argv[1]), outcomes(sys.argv[2])
diff = sorted(n for n in ref.keys() | hm.keys() if ref.get(n) != hm.get(n))
for name in diff[:40]:
    print(f"{name}: python3.11 {ref.get(name, 'absent')}, hm-python3 {hm.get(name, 'absent')}")
counts = {}
for state in hm.values():
    counts[state] = counts.get(state, 0) + 1
print(f"{len(hm)} test cases, {counts}; {len(diff)} differ")
sys.exit(1 if diff or not hm else 0)
