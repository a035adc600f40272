# sluice: the two commands a new user runs, and the builds behind them.
#
#   make demo   install missing Debian packages, build (release), run the end-to-end demo
#   make test   install missing Debian packages, then: ASan+UBSan build running the unit tests
#               and every fuzz corpus replay, a ThreadSanitizer build running the threaded
#               tests, then the release build running every test (its ctest summary is the
#               last thing printed)
#   make fuzz   libFuzzer campaigns, FUZZ_SECONDS per target (default 600); not part of test
#   make bench  build the benchmarks (see bench/README.md for running them)
#
# Nothing else is needed: no environment variables, no manual apt step.

SHELL := /bin/bash
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 600

# Debian 12 packages the build, the tests and the demo need.
DEB_PACKAGES := build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev \
	libzstd-dev liburing-dev libcmocka-dev libisal-dev zlib1g-dev \
	libjpeg62-turbo-dev libturbojpeg0-dev libpng-dev libopenblas-dev \
	python3 python3-protobuf python3-crcmod zstd

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CMAKE_GEN := -G Ninja

.PHONY: all deps build demo test test-asan test-tsan test-release fuzz bench clean cuda-check

all: build

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "== installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null && \
	  echo "== packages installed"; \
	else \
	  echo "== Debian packages: all present"; \
	fi

build/release/build.ninja: | deps
	cmake -S . -B build/release $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release >/dev/null

build: deps build/release/build.ninja
	@echo "== building (release)"
	@set -o pipefail; cmake --build build/release -j $(JOBS) | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }
	@test -x build/release/tools/sluice

demo: build
	@bash examples/demo.sh build/release/tools/sluice demo-out

test-asan: deps
	@echo "== ASan+UBSan build: unit tests and fuzz corpus replays"
	@cmake -S . -B build/asan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DSL_SANITIZE=address \
	  -DSL_BUILD_BENCH=OFF >/dev/null
	@set -o pipefail; cmake --build build/asan -j $(JOBS) | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest -L 'unit|fuzz' -j $(JOBS) --output-on-failure

test-tsan: deps
	@echo "== ThreadSanitizer build: threaded unit tests"
	@cmake -S . -B build/tsan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DSL_SANITIZE=thread \
	  -DSL_BUILD_BENCH=OFF >/dev/null
	@set -o pipefail; cmake --build build/tsan -j $(JOBS) | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest -L threads -j $(JOBS) --output-on-failure

# ctest lists skipped tests (the GPU tests, without a GPU) after its summary; the summary line
# is repeated last so that it ends the output.
test-release: build
	@echo "== release build: every test"
	@set -o pipefail; cd build/release && ctest -j $(JOBS) --output-on-failure | tee ctest.log
	@grep -E '^[0-9]+% tests passed' build/release/ctest.log | tail -1

test: test-asan test-tsan test-release

fuzz: deps
	@cmake -S . -B build/fuzz $(CMAKE_GEN) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSL_SANITIZE=address -DSL_FUZZ=ON -DSL_BUILD_BENCH=OFF >/dev/null
	@set -o pipefail; cmake --build build/fuzz -j $(JOBS) | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }
	@bash tests/fuzz/run_campaigns.sh build/fuzz/tests $(FUZZ_SECONDS)

bench: build
	@echo "benchmarks built in build/release/bench; see bench/README.md"

clean:
	rm -rf build demo-out

# `make cuda-check`: on a machine with a GPU, only sl_core, the trainer's layers/models/optimizers
# and the CUDA backend, built for sm_90 from trainer/cuda/check (no zstd, liburing, ISA-L,
# OpenBLAS or cmocka; no package installs), then the device tests; they exit 77 (ctest:
# skipped) without a GPU.
CUDA_CHECK_DIR ?= build/cuda-check
cuda-check:
	cmake -S trainer/cuda/check -B $(CUDA_CHECK_DIR) -DCMAKE_BUILD_TYPE=Release -DSL_CUDA_ARCH=90
	cmake --build $(CUDA_CHECK_DIR) --parallel
	ctest --test-dir $(CUDA_CHECK_DIR) --output-on-failure -L cuda
