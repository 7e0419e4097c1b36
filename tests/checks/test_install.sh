#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/checks/test_install.sh: the installed package works for its two kinds of consumer.
#
# usage: test_install.sh <source dir> [cmake] [cc] [generator] [pkg-config]
#
# 1. Configure, build and install the project (tests, benchmarks and examples off) into a
#    temporary prefix with `cmake --install --prefix`, with CMake's default generator (no Ninja
#    needed); check what a distribution packager checks: libraries, headers, the licence, the
#    docs, the man page, the version, a .pc file with the absolute prefix it was installed
#    under (and, installed under /usr with DESTDIR, flags that name no system directory).
# 2. Compile a small C program with `cc app.c $(pkg-config --cflags --libs hostmalloc)` against
#    that prefix and run it.
# 3. Build a tiny CMake project doing find_package(hostmalloc REQUIRED) and linking
#    hostmalloc::hostmalloc, hostmalloc::hostmalloc_static and hostmalloc::hostmalloc_override,
#    with CMAKE_PREFIX_PATH set to a copy of the prefix moved elsewhere (the CMake package is
#    relocatable; the .pc file, by design, is not), and run them.
set -eu

src=${1:?usage: test_install.sh <source dir> [cmake] [cc] [generator] [pkg-config]}
cmake=${2:-cmake}
cc=${3:-cc}
generator=${4:-}
pkgconfig=${5:-pkg-config}
[ -n "$pkgconfig" ] || pkgconfig=pkg-config

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hm-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/p

step() { printf '\n==== %s\n' "$*"; }
die() {
    printf 'FAIL: %s\n' "$*"
    exit 1
}

gen_args=""
[ -n "$generator" ] && gen_args="-G$generator"

step "configure, build and install $src into $prefix"
# shellcheck disable=SC2086
# the multiarch libdir, as Debian's packages use (GNUInstallDirs chooses it only for /usr)
"$cmake" -S "$src" -B "$tmp/b" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu \
    -DCMAKE_C_COMPILER="$cc" -DHM_BUILD_TESTS=OFF -DHM_BUILD_BENCH=OFF \
    -DHM_BUILD_EXAMPLES=OFF || die "configure"
"$cmake" --build "$tmp/b" --parallel 2 || die "build"
"$cmake" --install "$tmp/b" --prefix "$prefix" || die "install"

find "$prefix" -type f -o -type l | sed "s|^$prefix/|    |" | sort
[ -f "$prefix/include/hostmalloc/hostmalloc.h" ] || die "hostmalloc.h not installed"
[ -f "$prefix/include/hostmalloc/hosting.h" ] || die "hosting.h not installed"
pcfile=$(find "$prefix" -name hostmalloc.pc | head -n 1)
[ -n "$pcfile" ] || die "hostmalloc.pc not installed"
pcdir=$(dirname "$pcfile")
libdir=$(dirname "$pcdir")
ls "$libdir"/libhostmalloc.so* >/dev/null 2>&1 || die "libhostmalloc.so not installed in $libdir"
[ -f "$libdir/libhostmalloc.a" ] || die "libhostmalloc.a not installed in $libdir"
[ -f "$libdir/cmake/hostmalloc/hostmallocConfig.cmake" ] ||
    die "hostmallocConfig.cmake not installed in $libdir/cmake/hostmalloc"
ls "$libdir"/libhostmalloc-override.so* >/dev/null 2>&1 ||
    die "libhostmalloc-override.so not installed in $libdir"

step "no test hook in an installed library"
nm=${NM:-nm}
command -v "$nm" >/dev/null 2>&1 || die "$nm not found (binutils; scripts/deps.sh test)"
for lib in "$libdir"/libhostmalloc.so "$libdir"/libhostmalloc-override.so; do
    syms=$("$nm" -D --defined-only "$lib") || die "$nm -D $lib"
    echo "$syms" | grep -q ' hm_alloc$' || die "$nm -D lists no hm_alloc in $lib"
    echo "$syms" | grep ' hm_test_' && die "test hooks exported by $lib"
done
"$nm" --defined-only "$libdir/libhostmalloc.a" 2>/dev/null | grep ' hm_test_' &&
    die "test hooks in $libdir/libhostmalloc.a"
echo "none"

step "licence, docs, man page, version"
docdir=$prefix/share/doc/hostmalloc
for f in LICENSE README.md CHANGELOG.md docs/CONTRACT.md docs/API.md docs/MEMORY-MANAGER.md \
    docs/DEBUG.md docs/OVERRIDE.md; do
    [ -s "$docdir/$f" ] || die "$docdir/$f not installed"
done
# every relative link of the installed README and docs leads to an installed file
for md in "$docdir"/README.md "$docdir"/docs/*.md; do
    for link in $(grep -o '](\([A-Za-z0-9_./-]*\.md\|LICENSE\)' "$md" | sed 's/^](//'); do
        [ -f "$(dirname "$md")/$link" ] || die "$md links to $link, which is not installed"
    done
done
grep -q "^MIT License" "$docdir/LICENSE" || die "LICENSE is not the MIT licence text"
man3=$prefix/share/man/man3/hostmalloc.3
[ -s "$man3" ] || die "man page hostmalloc(3) not installed at $man3"
# every HM_* variable of the README's options table is in the man page
vars=$(sed -n 's/^| `\(HM_[A-Z_]*\)`.*/\1/p' "$src/README.md" | sort -u)
[ -n "$vars" ] || die "no HM_* variable found in the README's options table"
for v in $vars; do
    grep -q "$v" "$man3" || die "the man page does not document $v (README's options table does)"
done
if command -v groff >/dev/null 2>&1; then
    warn=$(groff -man -Tutf8 -ww -z "$man3" 2>&1) || die "groff failed on $man3: $warn"
    [ -z "$warn" ] || die "groff warns on $man3: $warn"
fi
# the version of the headers is the version of the package and of the CHANGELOG's newest entry
hv=$(sed -n 's/^#define HOSTMALLOC_VERSION_STRING "\(.*\)"/\1/p' \
    "$prefix/include/hostmalloc/hostmalloc.h")
[ -n "$hv" ] || die "hostmalloc.h has no HOSTMALLOC_VERSION_STRING"
grep -q "^## \[$hv\]" "$docdir/CHANGELOG.md" || die "CHANGELOG.md has no entry for $hv"
grep -q "PACKAGE_VERSION \"$hv\"" "$libdir/cmake/hostmalloc/hostmallocConfigVersion.cmake" ||
    die "hostmallocConfigVersion.cmake does not say $hv"
grep -q "^\\.TH HOSTMALLOC 3 .*\"hostmalloc $hv\"" "$man3" ||
    die "$man3 has no '.TH HOSTMALLOC 3 ... \"hostmalloc $hv\"' line"
echo "version $hv; docs, licence and man page installed"

# The consumer program: both doors, exit status and output checked.
cat >"$tmp/app.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <hostmalloc/hostmalloc.h>

int main(void) {
    IHostMemoryManager *mgr = NULL;
    IHostMalloc *m = NULL;
    void *p = NULL;
    if (hm_create_host_memory_manager(NULL, &mgr) != S_OK || !mgr) return 10;
    if (IHostMemoryManager_CreateMalloc(mgr, MALLOC_THREADSAFE, &m) != S_OK || !m) return 11;
    if (IHostMalloc_Alloc(m, 1000, eTaskCritical, &p) != S_OK || !p) return 12;
    memset(p, 0x42, 1000);
    if (IHostMalloc_Free(m, p) != S_OK) return 13;
    if (IHostMalloc_Free(m, (void *)&p) != HOST_E_INVALIDOPERATION) return 14;
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mgr);

    hm_heap *h = hm_heap_new(NULL, HM_HEAP_THREADSAFE);
    if (!h) return 20;
    char *s = hm_alloc(h, 64);
    if (!s || hm_heap_of(s) != h) return 21;
    strcpy(s, "hostmalloc install ok");
    puts(s);
    hm_free(s);
    hm_heap_release(h);
    if (hm_version() != HOSTMALLOC_VERSION) return 22;
    return strcmp(hm_version_string(), HOSTMALLOC_VERSION_STRING) == 0 ? 0 : 23;
}
EOF

failures=0
fail() {
    printf 'FAIL: %s\n' "$*"
    failures=$((failures + 1))
}

# Each consumer runs even when the other failed, so one run reports every problem.
pkgconfig_consumer() {
    command -v "$pkgconfig" >/dev/null 2>&1 || {
        fail "pkg-config not found ('$pkgconfig'; scripts/deps.sh test installs it)"
        return
    }
    PKG_CONFIG_PATH=$pcdir
    export PKG_CONFIG_PATH
    flags=$("$pkgconfig" --cflags --libs hostmalloc) || {
        fail "pkg-config does not know hostmalloc"
        return
    }
    echo "pkg-config --cflags --libs hostmalloc: $flags"
    echo "--- $pcfile:"
    cat "$pcfile"
    echo "---"
    [ "$("$pkgconfig" --variable=prefix hostmalloc)" = "$prefix" ] ||
        fail "the .pc file's prefix is not the install prefix $prefix"
    grep -q pcfiledir "$pcfile" && fail "the .pc file computes its prefix (pcfiledir)"
    [ "$("$pkgconfig" --modversion hostmalloc)" = "$hv" ] ||
        fail "pkg-config --modversion says $("$pkgconfig" --modversion hostmalloc), not $hv"
    # shellcheck disable=SC2086
    "$cc" -std=gnu11 -Wall -Wextra -o "$tmp/app" "$tmp/app.c" $flags || {
        fail "compiling with the pkg-config flags (the .pc file must describe the prefix it" \
            "was installed into: $prefix)"
        return
    }
    out=$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/app") || {
        fail "the pkg-config consumer exited with status $?"
        return
    }
    [ "$out" = "hostmalloc install ok" ] || {
        fail "the pkg-config consumer printed '$out'"
        return
    }
    echo "app: $out"
    # It really uses the installed library.
    LD_LIBRARY_PATH="$libdir" ldd "$tmp/app" | grep -F "$libdir/libhostmalloc.so" >/dev/null ||
        fail "the pkg-config consumer does not load $libdir/libhostmalloc.so"
}

find_package_consumer() {
    mkdir -p "$tmp/consumer"
    cp "$tmp/app.c" "$tmp/consumer/app.c"
    # the process's malloc is hostmalloc's: its blocks belong to a hostmalloc heap
    cat >"$tmp/consumer/override.c" <<'EOF2'
#include <stdio.h>
#include <stdlib.h>
#include <hostmalloc/hostmalloc.h>
int main(void) {
    void *p = malloc(100);
    if (p == NULL || hm_heap_of(p) == NULL) return 30;
    free(p);
    puts("hostmalloc install ok");
    return 0;
}
EOF2
    cat >"$tmp/consumer/CMakeLists.txt" <<'EOF2'
cmake_minimum_required(VERSION 3.16)
project(hostmalloc_consumer C)
find_package(hostmalloc 0.2 REQUIRED)
add_executable(app_shared app.c)
target_link_libraries(app_shared PRIVATE hostmalloc::hostmalloc)
add_executable(app_static app.c)
target_link_libraries(app_static PRIVATE hostmalloc::hostmalloc_static)
add_executable(app_override override.c)
target_link_libraries(app_override PRIVATE hostmalloc::hostmalloc_override)
EOF2
    # the package is found where it was moved to, not where it was installed
    moved=$tmp/moved
    cp -a "$prefix" "$moved" || {
        fail "copying the prefix"
        return
    }
    libdir=$moved/${libdir#"$prefix"/}
    # shellcheck disable=SC2086
    "$cmake" -S "$tmp/consumer" -B "$tmp/cb" ${gen_args:+"$gen_args"} -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_PREFIX_PATH="$moved" || {
        fail "configuring the find_package consumer"
        return
    }
    "$cmake" --build "$tmp/cb" || {
        fail "building the find_package consumer"
        return
    }
    for exe in app_shared app_static app_override; do
        if out=$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/cb/$exe"); then
            if [ "$out" = "hostmalloc install ok" ]; then
                echo "$exe: $out"
            else
                fail "$exe printed '$out'"
            fi
        else
            fail "$exe exited with status $?"
        fi
    done
    if LD_LIBRARY_PATH="$libdir" ldd "$tmp/cb/app_static" | grep -q libhostmalloc; then
        fail "app_static links libhostmalloc.so dynamically"
    fi
    LD_LIBRARY_PATH="$libdir" ldd "$tmp/cb/app_shared" | grep -F "$moved/" >/dev/null ||
        fail "app_shared does not load libhostmalloc.so from the moved prefix $moved"
}

# Installed as a distribution does: under /usr, into a staging DESTDIR. The flags must then
# name no system directory (pkg-config drops -I/usr/include and -L of the multiarch libdir
# only when they are written plainly).
system_install() {
    DESTDIR=$tmp/stage "$cmake" --install "$tmp/b" --prefix /usr >/dev/null || {
        fail "cmake --install --prefix /usr with DESTDIR"
        return
    }
    spc=$(find "$tmp/stage" -name hostmalloc.pc | head -n 1)
    [ -n "$spc" ] || {
        fail "no hostmalloc.pc staged under $tmp/stage"
        return
    }
    echo "--- $spc:"
    cat "$spc"
    grep -q '^prefix=/usr$' "$spc" || fail "the staged .pc does not say prefix=/usr"
    # pkg-config's system directories: /usr/include, and the libdir the .pc was staged in
    sysinc=/usr/include
    syslib=$(dirname "$(dirname "$spc")" | sed "s|^$tmp/stage||")
    cflags=$(PKG_CONFIG_PATH=$(dirname "$spc") PKG_CONFIG_SYSTEM_INCLUDE_PATH=$sysinc \
        PKG_CONFIG_SYSTEM_LIBRARY_PATH=$syslib "$pkgconfig" --cflags hostmalloc)
    libs=$(PKG_CONFIG_PATH=$(dirname "$spc") PKG_CONFIG_SYSTEM_INCLUDE_PATH=$sysinc \
        PKG_CONFIG_SYSTEM_LIBRARY_PATH=$syslib "$pkgconfig" --libs hostmalloc)
    echo "under /usr: cflags '$cflags', libs '$libs'"
    [ -z "$(echo "$cflags" | tr -d ' ')" ] || fail "under /usr, --cflags gives '$cflags'"
    [ "$(echo "$libs" | tr -s ' ' | sed 's/ *$//')" = "-lhostmalloc" ] ||
        fail "under /usr, --libs gives '$libs'"
}

step "installed under /usr (DESTDIR)"
system_install
step "pkg-config consumer"
pkgconfig_consumer
step "find_package consumer"
find_package_consumer

if [ "$failures" -ne 0 ]; then
    step "$failures failure(s)"
    exit 1
fi
step "OK"
