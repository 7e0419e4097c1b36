#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Real programs under the override: each runs with and without LD_PRELOAD and the outputs must
# match; HM_STATS=1 proves the override served the run (it appends the malloc statistics of
# every process to HM_STATS_FILE at exit: xz and coreutils close stderr before that).
#   programs.sh <path-to-libhostmalloc-override.so>
set -u
OV=$(realpath "$1" 2>/dev/null)
[ -f "$OV" ] || { echo "no override library at $1"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
pass=0 fail=0

check() { # name, command...
    local name=$1
    shift
    local plain over
    plain=$("$@" 2>&1)
    local rc1=$?
    rm -f stats.txt
    over=$(LD_PRELOAD="$OV" HM_STATS=1 HM_STATS_FILE="$work/stats.txt" "$@" 2>&1)
    local rc2=$?
    if [ $rc1 -ne $rc2 ] || [ "$plain" != "$over" ]; then
        echo "FAIL $name: exit $rc1 vs $rc2"
        diff <(echo "$plain") <(echo "$over") | head -20
        tail -5 stats.txt
        fail=$((fail + 1))
    elif ! grep -q "^hostmalloc malloc statistics, pid [0-9]" stats.txt; then
        echo "FAIL $name: the override was not in use (no statistics at exit)"
        fail=$((fail + 1))
    else
        echo "ok   $name ($(grep -m1 'calls:' stats.txt | sed 's/^ *//'))"
        pass=$((pass + 1))
    fi
}

# python3: many dicts, lists and strings built and discarded
cat > churn.py <<'PY'
import random
random.seed(7)
total = 0
for rnd in range(30):
    d = [{str(i): [i] * (i % 7) for i in range(random.randint(50, 300))} for _ in range(300)]
    s = ["x" * random.randint(1, 2000) for _ in range(2000)]
    total += sum(len(x) for x in d) + sum(len(x) for x in s)
    del d, s
print(total)
PY
check python3 python3 churn.py

# sqlite3: create, fill (100k rows), index, query
cat > q.sql <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000)
INSERT INTO t(name, v) SELECT 'name' || x, x * 1.5 FROM c;
CREATE INDEX ti ON t(name);
SELECT count(*), sum(v), min(name), max(name) FROM t WHERE name LIKE 'name9%';
SELECT id, v FROM t WHERE name = 'name77777';
SELECT count(*) FROM t GROUP BY id % 10 ORDER BY 1 LIMIT 3;
SQL
check sqlite3 sh -c 'rm -f db.sqlite && sqlite3 db.sqlite < q.sql'

# gcc compiling a C file
cat > prog.c <<'C'
#include <stdio.h>
#include <stdlib.h>
struct node { int v; struct node *next; };
int main(void) {
    struct node *h = NULL;
    for (int i = 0; i < 1000; i++) { struct node *n = malloc(sizeof *n); n->v = i; n->next = h; h = n; }
    long s = 0;
    while (h) { struct node *n = h->next; s += h->v; free(h); h = n; }
    printf("%ld\n", s);
    return 0;
}
C
check gcc sh -c 'gcc -O2 -Wall -o prog prog.c && ./prog'

# git init/add/commit/log in a temporary repository
check git sh -c 'rm -rf repo && git init -q repo && cd repo && for i in 1 2 3; do seq 1 $((i * 1000)) > f$i; git add f$i; GIT_AUTHOR_DATE=2020-01-0${i}T00:00:00 GIT_COMMITTER_DATE=2020-01-0${i}T00:00:00 git -c user.name=t -c user.email=t@t commit -qm "c$i"; done && git log --format="%H %s" && git cat-file -p HEAD^{tree}'

# a multi-threaded program: xz with two threads, compress and decompress
head -c 8000000 /dev/urandom > blob
seq 1 400000 >> blob
check xz sh -c 'xz -T2 -1 -c blob | xz -T2 -dc | cksum'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
