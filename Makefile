# hostmalloc: the commands of README.md. CMake does the building; this file names the steps.
BUILD     ?= build
PREFIX    ?= /usr/local
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
CMAKE_ARGS ?=

.PHONY: all deps build run test test-release test-asan test-tsan test-tools bench install format clean

all: build

build:
	@scripts/deps.sh build
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	cmake --build $(BUILD)

# Build everything and run the demo host.
run: build
	$(BUILD)/examples/demo_host

# Install what the tests need, build, and run every test: the release suite (warnings are
# errors), the unit tests under ASan+UBSan, the stress tests under TSan, and hostmalloc's
# blocks under valgrind memcheck and ASan poisoning.
test:
	@scripts/deps.sh test
	$(MAKE) test-release test-asan test-tsan test-tools

test-release:
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release -DHM_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD)
	cd $(BUILD) && ctest --output-on-failure --timeout 600

test-asan:
	cmake -S . -B build-asan $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHM_WERROR=ON -DHM_ASAN_POISON=OFF \
	  -DHM_DEBUG_ASSERT=ON -DHM_SANITIZE=address,undefined -DHM_BUILD_BENCH=OFF
	cmake --build build-asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 600 -L unit \
	  -E '^exports$$' # ASan exports its own __odr_asan.* symbols; the release run checks exports

test-tsan:
	cmake -S . -B build-tsan $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHM_WERROR=ON \
	  -DHM_SANITIZE=thread -DHM_BUILD_BENCH=OFF -DHM_BUILD_EXAMPLES=OFF
	cmake --build build-tsan
	cd build-tsan && setarch $$(uname -m) -R ctest --output-on-failure --timeout 900 -L stress

test-tools:
	cmake -S . -B build-vg $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHM_WERROR=ON \
	  -DHM_VALGRIND=ON -DHM_BUILD_BENCH=OFF -DHM_BUILD_EXAMPLES=OFF
	cmake --build build-vg --target faulty
	cd build-vg && ctest --output-on-failure -L tools
	cmake -S . -B build-poison $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHM_WERROR=ON \
	  -DHM_SANITIZE=address,undefined -DHM_ASAN_POISON=ON -DHM_BUILD_BENCH=OFF -DHM_BUILD_EXAMPLES=OFF
	cmake --build build-poison --target faulty
	cd build-poison && ctest --output-on-failure -L tools

bench: build
	@scripts/deps.sh bench
	bench/run.sh $(BUILD)/bench/bench
	bench/callgrind.sh $(BUILD)/bench/bench

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i include/hostmalloc/*.h src/*.c src/*.h src/*/*.c src/*/*.h \
	  tests/*.c tests/*.h bench/*.c examples/*.c

clean:
	rm -rf $(BUILD) build-asan build-tsan build-vg build-poison
