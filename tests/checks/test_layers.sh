#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/checks/test_layers.sh <source dir> [<static library> <nm>]: every include of the engine
# points down or sideways, never up, and so does every call (docs/LAYERS.md).
#
# The layers, bottom up, are the folders of src/: base os config mem debug manager doors. A
# file may include the headers of its own layer and of the layers below it; inside mem, whose
# files are layered too, a file may include only the headers of its own file and of those below
# it (budget types segment page heap alloc mem). Headers are named from src/ ("mem/page.h"); a
# bare name is allowed only for a header next to the file (doors/com/com.h). The fault hooks
# (os/test_hooks.h) are for os/faults.c and the tests alone. The runtime adapters (runtimes/)
# and the examples include nothing of src/: they are built on the public headers.
set -u
root=$1
lib=${2:-}
case $lib in /* | '') ;; *) lib=$(pwd)/$lib ;; esac
bad=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

layer_rank() {
    case $1 in
    base) echo 0 ;; os) echo 1 ;; config) echo 2 ;; mem) echo 3 ;; debug) echo 4 ;;
    manager) echo 5 ;; doors) echo 6 ;; *) echo -1 ;;
    esac
}

mem_rank() {
    case $1 in
    budget) echo 0 ;; types) echo 1 ;; segment) echo 2 ;; page) echo 3 ;; heap) echo 4 ;;
    alloc) echo 5 ;; mem) echo 6 ;; *) echo -1 ;;
    esac
}

cd "$root/src" || exit 2
for f in $(find . -name '*.[ch]' | sed 's|^\./||' | sort); do
    layer=${f%%/*}
    rank=$(layer_rank "$layer")
    if [ "$rank" -lt 0 ]; then
        echo "$f: not in a layer folder (base os config mem debug manager doors)"
        bad=1
        continue
    fi
    stem=$(basename "$f")
    stem=${stem%.*}
    grep -n '^#include "' "$f" | while IFS= read -r line; do
        n=${line%%:*}
        inc=$(echo "$line" | sed 's/^[0-9]*:#include "\([^"]*\)".*/\1/')
        case $inc in
        hostmalloc/*) continue ;; # the public headers
        */*) ;;
        *)
            if [ -f "$(dirname "$f")/$inc" ]; then continue; fi
            echo "$f:$n: includes \"$inc\": name engine headers from src/ (\"mem/page.h\")"
            echo x >>"$tmp"
            continue
            ;;
        esac
        to=${inc%%/*}
        to_rank=$(layer_rank "$to")
        if [ "$to_rank" -lt 0 ]; then
            echo "$f:$n: includes \"$inc\", which is in no layer"
            echo x >>"$tmp"
        elif [ "$to_rank" -gt "$rank" ]; then
            echo "$f:$n: $layer includes \"$inc\" of $to, a layer above it"
            echo x >>"$tmp"
        elif [ "$inc" = os/test_hooks.h ] && [ "$f" != os/faults.c ]; then
            echo "$f:$n: includes the test hooks, which only os/faults.c and tests may"
            echo x >>"$tmp"
        elif [ "$layer" = mem ] && [ "$to" = mem ]; then
            h=$(basename "$inc")
            h=${h%.*}
            if [ "$(mem_rank "$h")" -gt "$(mem_rank "$stem")" ]; then
                echo "$f:$n: includes \"$inc\", above $stem in mem (budget types segment page heap alloc)"
                echo x >>"$tmp"
            fi
        fi
    done
done

cd "$root" || exit 2
for f in $(find runtimes examples -name '*.[ch]' -o -name '*.cpp' | sort); do
    grep -n '^#include "' "$f" | while IFS= read -r line; do
        inc=$(echo "$line" | sed 's/^[0-9]*:#include "\([^"]*\)".*/\1/')
        if [ -f "src/$inc" ]; then
            echo "$f:${line%%:*}: includes the engine header \"$inc\": use the public headers"
            echo x >>"$tmp"
        fi
    done
done

# Calls: with the static library, every hm_ or _hm_ function or variable an object file uses
# must be defined by an object of its own layer or of one below (inside mem: of its own file or
# of one below). Calls through the page kinds' function pointers are the one way up, by design.
if [ $# -ge 3 ]; then
    nm=$3
    rank_of_object() {
        case $1 in
        fmt.c.o | time.c.o) echo 00 ;;
        linux.c.o | meta.c.o | faults.c.o) echo 10 ;;
        options.c.o) echo 20 ;;
        budget.c.o) echo 30 ;; segment.c.o) echo 32 ;; page.c.o) echo 33 ;;
        heap.c.o) echo 34 ;; alloc.c.o) echo 35 ;;
        debug.c.o | checked.c.o | walk.c.o) echo 40 ;;
        manager.c.o | vmem.c.o | stats.c.o) echo 50 ;;
        native.c.o | com_guids.c.o | com_malloc.c.o | com_manager.c.o | override.c.o) echo 60 ;;
        *) echo 99 ;;
        esac
    }
    defs=$(mktemp)
    [ -f "$lib" ] || { echo "layers: no library $lib"; exit 2; }
    "$nm" -A --defined-only "$lib" | awk '$NF ~ /^_?hm_/ { split($1, a, ":"); print $NF, a[2] }' | sort -u >"$defs"
    "$nm" -A -u "$lib" | awk '$NF ~ /^_?hm_/ { split($1, a, ":"); print a[2], $NF }' |
        sort -u | while read -r obj sym; do
            user=$(rank_of_object "$obj")
            def=$(awk -v s="$sym" '$1 == s { print $2; exit }' "$defs")
            [ -n "$def" ] || continue
            if [ "$(rank_of_object "$def")" -gt "$user" ]; then
                echo "$obj uses $sym, defined above it in $def"
                echo x >>"$tmp"
            fi
        done
    rm -f "$defs"
    if [ ! -s "$tmp" ]; then echo "layers: every call between the engine's files goes down or sideways"; fi
fi

if [ -s "$tmp" ] || [ $bad -ne 0 ]; then
    echo "layers: includes or calls that point up (docs/LAYERS.md)"
    exit 1
fi
echo "layers: every include of src/ points down or sideways"
