# veer: the two set-up commands are `make run` and `make test`. Both install what is missing
# (Debian 12; apt-get as root, otherwise they print the command to run) and build.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= 2
CONFIG     ?= examples/default.json
FUZZ_SECONDS ?= 30

CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build run test test-asan fuzz bench clean check

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/veer run -c $(CONFIG)

check: build
	./$(BUILD)/veer check -c $(CONFIG)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVEER_SANITIZE=ON
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS) --timeout 900

# libFuzzer targets (clang), each run for FUZZ_SECONDS on a copy of its committed corpus.
fuzz:
	VEER_DEPS_CI=1 sh scripts/install-deps.sh
	cmake -S . -B $(BUILD_FUZZ) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DVEER_FUZZ=ON -DVEER_TESTS=OFF
	cmake --build $(BUILD_FUZZ) -j $(JOBS)
	sh scripts/run-fuzzers.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

bench: deps
	cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DVEER_BENCH=ON -DVEER_TESTS=OFF
	cmake --build build-bench -j $(JOBS)

# veer beside haproxy, v2ray, shadowsocks-libev and socat on loopback, plus the microbenchmarks;
# installs the peers with apt-get (root), prints the tables and rewrites docs/benchmarks.md.
.PHONY: bench-run
bench-run: bench
	python3 bench/run

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) build-bench

# Cross builds (Debian cross toolchains, multiarch -dev packages): unit tests and corpus replays
# under qemu-user, plus the musl symbol check. CROSS_ARCHES: aarch64 mipsel s390x.
CROSS_ARCHES ?= aarch64 mipsel s390x
.PHONY: cross-test release-size
cross-test:
	JOBS=$(JOBS) sh scripts/cross-test.sh $(CROSS_ARCHES)

# The size-optimised daemon (-Os, LTO, --gc-sections, stripped) in build-size[-ARCH]; prints
# the stripped size. SIZE_ARCH: empty (native) or aarch64, mipsel, s390x (cross).
SIZE_ARCH ?=
release-size: deps
	cmake -S . -B build-size$(if $(SIZE_ARCH),-$(SIZE_ARCH)) -G Ninja -C cmake/toolchains/release-size.cmake \
	  $(if $(SIZE_ARCH),-DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/$(SIZE_ARCH).cmake)
	cmake --build build-size$(if $(SIZE_ARCH),-$(SIZE_ARCH)) -j $(JOBS) --target veer
	@ls -l build-size$(if $(SIZE_ARCH),-$(SIZE_ARCH))/veer | awk '{print "veer stripped: " $$5 " bytes"}'
