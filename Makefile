# facekit front door. `make run` and `make test` are the two commands a new machine needs (README.md).
BUILD   ?= build
JOBS    ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup build run test test-deps asan clang bench bench-nn bench-server clean

all: build

# Installs Debian packages and fetches + verifies the pinned models; a no-op when all is present.
setup:
	@scripts/setup --check >/dev/null 2>&1 || scripts/setup

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The main job: `facekit serve` on SQLite under ./data (git-ignored). The first start creates the user
# "admin" and prints its one-time password (changed at first login). LISTEN=HOST:PORT to change the address.
DATA    ?= data
LISTEN  ?= 127.0.0.1:8080
run: build
	$(BUILD)/facekit models
	$(BUILD)/facekit serve --data $(DATA) --listen $(LISTEN) $(if $(CONFIG),--config $(CONFIG))

# Test-only reference runtimes (ONNX Runtime, TensorFlow.js) from npm, pinned by tests/ref/package-lock.json.
# --ignore-scripts: onnxruntime-node's install script tries a download that cannot work here.
test-deps:
	@[ -d tests/ref/node_modules ] || (cd tests/ref && npm ci --ignore-scripts --no-audit --no-fund)

test: build test-deps
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The same tree compiled with clang and -Werror (CI runs it after the tests: a warning only clang sees fails
# the run). No tests here: the suite already ran against the gcc build.
clang: setup
	@CC=clang CXX=clang++ cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Release -DFK_WEB=OFF >/dev/null
	@cmake --build build-clang -j$(JOBS)

# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer, in its own build tree.
asan: setup test-deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFK_SANITIZE=ON -DFK_TEST_HOOKS=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS)

bench: build bench-nn bench-pipeline bench-server

# Our executor against ONNX Runtime 1.30, model by model, 1 thread (bench/bench_nn.js; docs/performance.md).
bench-nn: build
	@test -d tests/ref/node_modules/onnxruntime-node || (cd tests/ref && npm ci --ignore-scripts)
	node bench/bench_nn.js --timer $(BUILD)/bench/nn_time --flush $(BUILD)/bench/fk_flush_model $(BENCH_NN_FLAGS)

# The face pipeline (decode .. liveness of one 853x480 face) against ORT's four networks alone, same run
# (bench/bench_pipeline.js; docs/performance.md "Face pipeline vs ONNX Runtime").
bench-pipeline: build
	@test -d tests/ref/node_modules/onnxruntime-node || (cd tests/ref && npm ci --ignore-scripts)
	node bench/bench_pipeline.js --facekit $(BUILD)/facekit --flush $(BUILD)/bench/fk_flush_model $(BENCH_PIPELINE_FLAGS)

# wrk: 32 connections for 20 s posting two small JPEGs to /api/v1/compare (bench/bench_server.sh).
bench-server: build
	bench/bench_server.sh $(BUILD)/facekit

clean:
	rm -rf $(BUILD) build-asan
