/* SPDX-License-Identifier: MIT */
/* hm-python3.c: python3 with its memory on hostmalloc (runtimes/python, docs/RUNTIMES.md).
 * Everything python3 does, it does: scripts, -m, -c, the interactive prompt, Python's own
 * test runner; the budget and the rest come from the HM_* environment. */
#include "hostmalloc/hm_python.h"

int main(int argc, char **argv) {
    return hm_python_main(argc, argv);
}
