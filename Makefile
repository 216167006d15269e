# The two commands of the README: `make run` builds and runs the gateway, `make test` runs every test.
# Both install libcurl's and hiredis's headers, pkg-config and redis-server first when they are missing.

SWIFT ?= swift
CONFIG ?= proxy.conf

.PHONY: deps bench-deps build run test sanitize fuzz bench bench-redis soak desync lint format clean

deps:
	@./scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

run: build
	$(SWIFT) run -c release xi-gateway --config $(CONFIG)

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test
	$(MAKE) lint

# The whole suite under ThreadSanitizer, then AddressSanitizer (each in its own build folder). Leak
# reports are off: tests end with work deliberately left pending; the soak measures memory instead.
# scripts/asan.supp and scripts/tsan.supp hold one suppression each (a bug of Foundation's Process.run; the
# Swift runtime's continuations, which ThreadSanitizer cannot see ordered).
sanitize: deps
	TSAN_OPTIONS=suppressions=$(CURDIR)/scripts/tsan.supp $(SWIFT) test --sanitize=thread --scratch-path .build-tsan
	ASAN_OPTIONS=detect_leaks=0:suppressions=$(CURDIR)/scripts/asan.supp $(SWIFT) test --sanitize=address --scratch-path .build-asan

# libFuzzer targets (Fuzz/): the query parser, the whole HTTP request path, and the request decoder against
# NIO's, FUZZ_SECONDS each (default 60), with AddressSanitizer. Linked with lld: gold fails on libFuzzer's
# objects.
FUZZ_FLAGS = -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
fuzz: deps
	cd Fuzz && $(SWIFT) build $(FUZZ_FLAGS) --product FuzzListQuery
	cd Fuzz && $(SWIFT) build $(FUZZ_FLAGS) --product FuzzHTTPRequest
	cd Fuzz && $(SWIFT) build $(FUZZ_FLAGS) --product FuzzRequestDecoder
	./scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

# The benchmark against nginx, HAProxy and Varnish (loopback only; about 12 minutes; see bench/bench.py).
bench-deps: deps
	@./scripts/install-deps.sh --bench

bench: bench-deps
	$(SWIFT) build -c release --product xi-gateway
	$(SWIFT) build -c release --product xi-fake-upstream
	python3 bench/bench.py $(BENCH_ARGS)

# The shared tier's Redis client against redis-benchmark on one redis-server (Unix socket; under a minute).
bench-redis: deps
	$(SWIFT) build -c release --product xi-redis-bench
	.build/release/xi-redis-bench $(REDIS_BENCH_ARGS)

# A bounded soak under upstream faults (loopback only; SOAK_SECONDS, default 300). Exit 1 on a wrong page,
# a leaked secret or a crash.
soak: deps
	$(SWIFT) build -c release --product xi-gateway
	$(SWIFT) build -c release --product xi-fake-upstream
	python3 bench/soak.py --seconds $(or $(SOAK_SECONDS),300)

# Request smuggling and desynchronisation attempts through nginx and HAProxy in front of the gateway, and
# straight to it (loopback only; under 3 minutes; see bench/desync.py). Exit 1 on any failure.
desync: bench-deps
	$(SWIFT) build -c release --product xi-gateway
	$(SWIFT) build -c release --product xi-fake-upstream
	python3 bench/desync.py $(DESYNC_ARGS)

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks Fuzz/Package.swift Fuzz/Sources

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks Fuzz/Package.swift Fuzz/Sources

clean:
	rm -rf .build
