# SPDX-License-Identifier: MIT
# hostmalloc: the commands of README.md. CMake does the building; this file names the steps.
BUILD     ?= build
PREFIX    ?= /usr/local
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
CMAKE_ARGS ?=

.PHONY: all deps build configure run test test-release test-asan test-tsan test-tools test-fresh \
	bench install format clean

all: build

# Configure the release build: needs only a C compiler and CMake (the tests are configured when
# cmocka is there; `make test` installs it).
configure:
	@scripts/deps.sh build
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD)

# Build the library and the demo host (nothing else), and run it.
run: configure
	cmake --build $(BUILD) --target demo_host
	$(BUILD)/examples/demo_host

# Install what the tests need, build, and run every test: the `make run` path on a machine
# without test tooling, the release suite (warnings are errors), the unit tests in a debug build
# with internal assertions, the unit tests under ASan+UBSan, the stress tests under TSan,
# hostmalloc's blocks under valgrind memcheck and ASan poisoning, the fuzzer, the API tests
# under valgrind memcheck and the short soak test. Each leg's cost: docs/RELIABILITY.md.
LEGS := test-fresh test-release test-debug test-asan test-tsan test-tools test-fuzz test-valgrind \
	test-soak
test:
	@scripts/deps.sh test
	@for leg in $(LEGS); do start=$$(date +%s); \
	  $(MAKE) --no-print-directory $$leg || { echo "make test: $$leg failed"; exit 1; }; \
	  echo "make test: $$leg passed in $$(( $$(date +%s) - start )) s"; done

# The `make run` path as a fresh machine has it: cmocka made unfindable, the tests must not
# even be configured, and the demo host builds and runs.
test-fresh:
	$(MAKE) --no-print-directory run BUILD=build-fresh \
	  CMAKE_ARGS="-DHM_WERROR=ON -DCMAKE_DISABLE_FIND_PACKAGE_cmocka=ON"
	@test ! -e build-fresh/tests || { echo "test-fresh: tests configured without cmocka"; exit 1; }

# Every CTest test but the soak test (test-soak runs it), the misuse suite (label misuse,
# tests/misuse: both modes against their expectations) included.
test-release:
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release -DHM_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD)
	cd $(BUILD) && ctest --output-on-failure --timeout 600 -LE soak # test-soak runs it

test-asan:
	cmake -S . -B build-asan $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHM_WERROR=ON -DHM_ASAN_POISON=OFF \
	  -DHM_DEBUG_ASSERT=ON -DHM_SANITIZE=address,undefined -DHM_BUILD_BENCH=OFF
	cmake --build build-asan
	@# not the rss tests: the process's RSS then holds ASan's shadow and quarantine; not exports:
	@# ASan exports its own __odr_asan.* symbols (the release leg runs both)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 600 -L unit \
	  -LE rss -E '^exports$$'

test-tsan:
	cmake -S . -B build-tsan $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHM_WERROR=ON \
	  -DHM_SANITIZE=thread -DHM_BUILD_BENCH=OFF -DHM_BUILD_EXAMPLES=OFF
	cmake --build build-tsan
	cd build-tsan && setarch $$(uname -m) -R ctest --output-on-failure --timeout 900 -L stress

test-tools:
	cmake -S . -B build-vg $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHM_WERROR=ON \
	  -DHM_VALGRIND=ON -DHM_BUILD_BENCH=OFF -DHM_BUILD_EXAMPLES=OFF
	cmake --build build-vg --target faulty test_com
	cd build-vg && ctest --output-on-failure -L tools
	@# the COM door's tests with the client requests compiled in, default and checked mode:
	@# memcheck must find nothing in the annotations themselves
	cd build-vg && for c in 0 1; do HM_CHECKED=$$c $(VALGRIND) tests/api/test_com >valgrind.log 2>&1 || \
	  { echo "test_com under valgrind (HM_VALGRIND=ON, HM_CHECKED=$$c) failed"; cat valgrind.log; exit 1; }; \
	  done; rm -f valgrind.log
	cmake -S . -B build-poison $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHM_WERROR=ON \
	  -DHM_SANITIZE=address,undefined -DHM_ASAN_POISON=ON -DHM_BUILD_BENCH=OFF -DHM_BUILD_EXAMPLES=OFF
	cmake --build build-poison --target faulty
	cd build-poison && ctest --output-on-failure -L tools

# The unit tests in a debug build with the internal assertions on (HM_DEBUG=2), compiled with
# clang (warnings are errors), so that both compilers build the whole tree warning-free.
.PHONY: test-debug test-valgrind soak test-soak
test-debug:
	CC=clang CXX=clang++ cmake -S . -B build-debug $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DHM_DEBUG_ASSERT=ON -DHM_WERROR=ON \
	  -DHM_BUILD_BENCH=OFF
	cmake --build build-debug
	cd build-debug && ctest --output-on-failure --timeout 600 -L unit -LE rss

# The API tests (test_com, test_native, test_abi of the release build) under valgrind memcheck:
# no error and no definite leak. One process per test function; the death tests (they fork a
# child that must abort) and the RSS tests (they measure this process's RSS) are left out.
VALGRIND ?= valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
test-valgrind:
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release -DHM_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD) --target test_com test_native test_abi
	@cd $(BUILD) && names=$$(ctest -N -L unit -LE 'death|rss' | \
	  sed -n 's/^ *Test *#[0-9]*: \(test_\(com\|native\|abi\)\.[A-Za-z0-9_]*\)$$/\1/p'); \
	test -n "$$names" || { echo "test-valgrind: no tests found"; exit 1; }; \
	n=0; failed=0; for t in $$names; do n=$$((n + 1)); \
	  if ! $(VALGRIND) tests/api/$${t%%.*} $${t#*.} >valgrind.log 2>&1; then \
	    failed=$$((failed + 1)); echo "FAILED under valgrind: $$t"; cat valgrind.log; fi; \
	done; rm -f valgrind.log; echo "test-valgrind: $$n tests, $$failed failed"; test $$failed -eq 0

# The soak test (tests/soak/soak.c): thread churn, instances and managers created and released,
# budgets hit and recovered, notifications, cross-thread frees; RSS must come back and stay flat.
# `make soak` runs it for SOAK_SECONDS (600); test-soak runs the 20-second CTest version.
SOAK_SECONDS ?= 600
soak:
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	cmake --build $(BUILD) --target soak
	$(BUILD)/tests/soak/soak $(SOAK_SECONDS)

test-soak:
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release -DHM_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD) --target soak
	cd $(BUILD) && ctest --output-on-failure -L soak

# The libFuzzer harness of the COM door (tests/fuzz/): clang, ASan+UBSan. test-fuzz runs the
# bounded CTest run (fuzz.short, 60 s over a copy of the seed corpus); fuzz runs it for
# FUZZ_SECONDS (600) and keeps what it finds in build-fuzz/fuzz-corpus.
FUZZ_SECONDS ?= 600
.PHONY: fuzz fuzz-build test-fuzz
fuzz-build:
	CC=clang cmake -S . -B build-fuzz $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHM_FUZZ=ON \
	  -DHM_BUILD_BENCH=OFF -DHM_BUILD_EXAMPLES=OFF
	cmake --build build-fuzz --target fuzz_hosting

fuzz: fuzz-build
	mkdir -p build-fuzz/fuzz-corpus build-fuzz/fuzz-artifacts
	build-fuzz/tests/fuzz/fuzz_hosting -max_len=4096 -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
	  -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=build-fuzz/fuzz-artifacts/ \
	  build-fuzz/fuzz-corpus tests/fuzz/corpus

test-fuzz: fuzz-build
	cd build-fuzz && ctest --output-on-failure -L fuzz

bench: build
	@scripts/deps.sh bench
	cmake -S . -B $(BUILD) # again: the runtime adapters are built once their packages are in
	cmake --build $(BUILD)
	bench/run.sh $(BUILD)/bench/bench
	bench/callgrind.sh $(BUILD)/bench/bench
	bench/runtimes.sh $(BUILD) # each runtime on its adapter against its own allocator

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(find include src tests examples bench runtimes -name '*.c' -o -name '*.h' \
	  -o -name '*.cpp' 2>/dev/null)

clean:
	rm -rf $(BUILD) build-fresh build-debug build-asan build-tsan build-vg build-poison build-fuzz
