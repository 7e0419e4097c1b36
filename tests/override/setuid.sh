#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# setuid.sh <setuid_probe>: a setuid-root program under the override, run by an unprivileged
# user who sets HM_STATS, HM_STATS_FILE, HM_VERBOSE and HM_LIMIT, must write no file, print no
# report or address (not even in the message of an abort), and not hang on a FIFO; and the
# statistics file of an ordinary run refuses FIFOs and symbolic links and is created 0600.
#
# Needs root (to make the setuid-root copy) and a directory on a mount without nosuid that the
# user nobody can reach; exits 77 (CTest: skipped) with the reason when either is missing.
set -u
probe=$(realpath "$1")
fail=0
bad() { echo "FAIL: $*"; fail=1; }

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: not root: cannot make a setuid-root copy of the probe"
    exit 77
fi
if grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status; then
    echo "SKIP: this process has no_new_privs set: the kernel ignores setuid bits here"
    exit 77
fi
for tool in setpriv findmnt mkfifo timeout; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/deps.sh test)"; exit 1; }
done
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

# A directory for the setuid copy: not on a nosuid mount, reachable by nobody.
dir=""
for base in "$(dirname "$probe")" /tmp /var/tmp /dev/shm; do
    [ -d "$base" ] || continue
    case ",$(findmnt -n -o OPTIONS --target "$base")," in *,nosuid,*) continue ;; esac
    d=$(mktemp -d "$base/hm-setuid.XXXXXX") || continue
    chmod 755 "$d"
    if as_nobody test -x "$d"; then dir=$d; break; fi
    rm -rf "$d"
done
if [ -z "$dir" ]; then
    echo "SKIP: no directory on a mount without nosuid that the user nobody can reach"
    exit 77
fi
trap 'exec 3>&-; rm -rf "$dir"' EXIT
echo "setuid copy in $dir"
cp "$probe" "$dir/probe"
chown root:root "$dir/probe"
chmod 4755 "$dir/probe"
out=$dir/out # root's, 0755: nobody cannot create files here, the setuid program could
mkdir "$out"
chmod 755 "$out"
echo keep >"$out/existing"
mkfifo -m 666 "$out/fifo"

# 1. The copy really runs with euid 0 for nobody (else the test would prove nothing).
ids=$(as_nobody "$dir/probe" 2>/dev/null)
[ "$ids" = "uid=65534 euid=0" ] || { echo "FAIL: the setuid copy printed '$ids', not uid=65534 euid=0"; exit 1; }

# 2. Control: the same options in an ordinary run do write the file (so 3 can fail).
HM_STATS=1 HM_STATS_FILE="$out/control" "$dir/probe" >/dev/null 2>&1
grep -q "^hostmalloc malloc statistics, pid" "$out/control" 2>/dev/null ||
    bad "an ordinary run with HM_STATS_FILE wrote no statistics"
[ "$(stat -c %a "$out/control" 2>/dev/null)" = 600 ] ||
    bad "the statistics file is mode $(stat -c %a "$out/control"), not 600"

# 3. setuid, run by nobody: no file created, none appended to, no report, no configuration.
err=$(HM_STATS=1 HM_STATS_FILE="$out/created" HM_VERBOSE=1 HM_LIMIT=1000T as_nobody "$dir/probe" 2>&1 >/dev/null)
[ -e "$out/created" ] && bad "setuid: HM_STATS_FILE created $(ls -l "$out/created")"
err2=$(HM_STATS=1 HM_STATS_FILE="$out/existing" as_nobody "$dir/probe" 2>&1 >/dev/null)
[ "$(cat "$out/existing")" = keep ] && [ "$(stat -c %s "$out/existing")" = 5 ] ||
    bad "setuid: HM_STATS_FILE appended to a root-owned file"
case "$err$err2" in
*"hostmalloc malloc statistics"* | *"configuration of"* | *0x*)
    bad "setuid: a report, the configuration or an address on stderr: $err $err2" ;;
esac
for name in HM_STATS HM_STATS_FILE HM_VERBOSE; do
    grep -q "ignoring $name in a setuid or setgid program" <<<"$err" ||
        bad "setuid: no 'ignoring $name' line: $err"
done
grep -q "ignoring HM_LIMIT=1000T in a setuid or setgid program" <<<"$err" || bad "setuid: HM_LIMIT above the default not refused: $err"

# 3b. A fatal error names no address in the setuid program (its stderr is nobody's); the same
#     error in an ordinary run does (so the check can fail).
err=$(HM_CHECKED=1 as_nobody "$dir/probe" --bad-free 2>&1 >/dev/null)
case "$err" in
*"hostmalloc: free(): pointer not allocated by hostmalloc: (address hidden)"*) ;;
*) bad "setuid: a bad free did not abort with an address-free message: $err" ;;
esac
case "$err" in *0x*) bad "setuid: an address in the abort message: $err" ;; esac
err=$("$dir/probe" --bad-free 2>&1 >/dev/null)
case "$err" in
*"hostmalloc: free(): pointer not allocated by hostmalloc: 0x"*) ;;
*) bad "an ordinary run's bad free did not name the address: $err" ;;
esac

# 4. setuid with a FIFO as the file: no hang.
timeout 20 env HM_STATS=1 HM_STATS_FILE="$out/fifo" setpriv --reuid=nobody --regid=nogroup \
    --clear-groups "$dir/probe" >/dev/null 2>&1
rc=$?
[ $rc -eq 0 ] || bad "setuid with a FIFO as HM_STATS_FILE: exit $rc (124: it hung)"

# 5. Ordinary runs: a FIFO without a reader fails at once; with a reader it is refused (and
#    nothing is written into it); a symbolic link is not followed.
err=$(HM_STATS=1 HM_STATS_FILE="$out/fifo" timeout 20 "$dir/probe" 2>&1 >/dev/null)
rc=$?
[ $rc -eq 0 ] || bad "a FIFO without a reader as HM_STATS_FILE: exit $rc (124: it hung)"
grep -q "^hostmalloc: statistics not written to $out/fifo" <<<"$err" ||
    bad "a FIFO without a reader: no message: $err"
exec 3<>"$out/fifo" # a reader (read-write: the open does not wait)
err=$(HM_STATS=1 HM_STATS_FILE="$out/fifo" timeout 20 "$dir/probe" 2>&1 >/dev/null)
rc=$?
[ $rc -eq 0 ] || bad "a FIFO with a reader as HM_STATS_FILE: exit $rc"
grep -q "^hostmalloc: statistics not written to $out/fifo: it is not a regular file" <<<"$err" ||
    bad "a FIFO with a reader: no 'not a regular file' line: $err"
echo END >&3
read -r -t 5 first <&3
[ "$first" = END ] || bad "the statistics went into the FIFO: '$first'"
exec 3>&-
ln -s "$out/target" "$out/link"
err=$(HM_STATS=1 HM_STATS_FILE="$out/link" "$dir/probe" 2>&1 >/dev/null)
[ -e "$out/target" ] && bad "HM_STATS_FILE followed a symbolic link"
grep -q "statistics not written to $out/link: it is a symbolic link" <<<"$err" ||
    bad "a symbolic link: no message: $err"

[ $fail -eq 0 ] && echo "ok: nothing written by the setuid program; FIFOs and links refused"
exit $fail
