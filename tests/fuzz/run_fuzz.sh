#!/bin/sh
# SPDX-License-Identifier: MIT
# run_fuzz.sh <fuzzer> <seed corpus> <seconds> <artifact dir>: the CTest test fuzz.short.
# Fuzzes for <seconds> over a temporary copy of the seed corpus (the repository's corpus is
# never written), with inputs of at most 4096 bytes. A crash, a leak, a timeout or a failed
# check makes the fuzzer exit non-zero, and the test fails; the input is left in <artifact dir>.
set -eu
fuzzer=$1 seeds=$2 seconds=$3 artifacts=$4
dir=$(mktemp -d "${TMPDIR:-/tmp}/hm-fuzz.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
cp "$seeds"/* "$dir"/
mkdir -p "$artifacts"
"$fuzzer" -max_len=4096 -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts"/ "$dir"
