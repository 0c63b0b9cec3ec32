# skiff — see README.md. Two commands matter to a newcomer: `make demo` and `make test`.
GO      ?= go
BIN     ?= bin/skiff
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build test unit deps demo bench bench-fleet lint fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/skiff

# deps installs the Debian packages the integration tests need when they are missing (as root).
deps:
	@scripts/deps.sh test

# test runs every test: lint, unit, integration against real sshd/supervisord/docker, and short fuzz runs.
test: deps lint
	$(GO) test -count=1 -timeout 14m ./...
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=10s ./inventory/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeEntry -fuzztime=10s ./deploy/
	$(GO) test -run='^$$' -fuzz=FuzzParseEnv -fuzztime=5s ./deploy/

unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=60s ./inventory/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeEntry -fuzztime=60s ./deploy/
	$(GO) test -run='^$$' -fuzz=FuzzParseEnv -fuzztime=60s ./deploy/

demo: build
	@scripts/deps.sh demo
	@scripts/demo.sh

bench: deps build
	@scripts/bench.sh

# bench-fleet puts skiff side by side with an Ansible playbook, an xargs+rsync+ssh loop and parallel-ssh on
# fleets of 1, 10 and 50 namespaced hosts (root; SKIFF_BENCH_QUICK=1 for 1 and 5) and keeps the table under
# bench/results/. SKIFF_BENCH_PROFILE=FILE also writes a CPU profile of skiff at the largest fleet.
bench-fleet: build
	@scripts/deps.sh bench
	@scripts/bench.sh Fleet

clean:
	rm -rf bin .sandbox
