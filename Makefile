# The two commands of the README: `make run` builds and runs the gateway, `make test` runs every test.
# Both install libcurl's headers and pkg-config first when they are missing.

SWIFT ?= swift
CONFIG ?= proxy.conf

.PHONY: deps build run test lint format clean

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

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests

clean:
	rm -rf .build
