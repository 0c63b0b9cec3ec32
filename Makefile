# skiff — see README.md. Two commands matter to a newcomer: `make demo` and `make test`.
GO      ?= go
BIN     ?= bin/skiff
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build test unit deps demo bench bench-fleet bench-serve lint fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/skiff

# deps installs the Debian packages the integration tests need when they are missing (as root).
deps:
	@scripts/deps.sh test

# test runs every test: lint, unit, integration against real sshd/supervisord/docker, and short fuzz runs.
# Fuzz budgets are execution counts, not durations: a duration races Go's fuzz coordinator on a loaded
# machine and fails with a bare "context deadline exceeded" (go.dev/issue/75804).
test: deps lint
	$(GO) test -count=1 -timeout 14m ./...
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=50000x ./inventory/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeEntry -fuzztime=50000x ./ship/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeManifest$$' -fuzztime=20000x ./ship/
	$(GO) test -run='^$$' -fuzz='^FuzzParseHistory$$' -fuzztime=20000x ./release/
	$(GO) test -run='^$$' -fuzz='^FuzzParseLockOwner$$' -fuzztime=20000x ./release/
	$(GO) test -run='^$$' -fuzz='^FuzzParseDockerOutput$$' -fuzztime=20000x ./compose/
	$(GO) test -run='^$$' -fuzz=FuzzParseHooks -fuzztime=5000x ./serve/
	$(GO) test -run='^$$' -fuzz=FuzzParseEnv -fuzztime=20000x ./deploy/

unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=1000000x ./inventory/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeEntry -fuzztime=1000000x ./ship/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeManifest$$' -fuzztime=1000000x ./ship/
	$(GO) test -run='^$$' -fuzz='^FuzzParseHistory$$' -fuzztime=1000000x ./release/
	$(GO) test -run='^$$' -fuzz='^FuzzParseLockOwner$$' -fuzztime=1000000x ./release/
	$(GO) test -run='^$$' -fuzz='^FuzzParseDockerOutput$$' -fuzztime=1000000x ./compose/
	$(GO) test -run='^$$' -fuzz=FuzzParseHooks -fuzztime=1000000x ./serve/
	$(GO) test -run='^$$' -fuzz=FuzzParseEnv -fuzztime=1000000x ./deploy/

demo: build
	@scripts/deps.sh demo
	@scripts/demo.sh

bench: deps build
	@scripts/bench.sh

# bench-fleet puts skiff side by side with an Ansible playbook, an xargs+rsync+ssh loop and parallel-ssh on
# fleets of 1, 10 and 50 namespaced hosts, and 200 with SKIFF_BENCH_LARGE=1 (root; about half an hour, 6 GiB;
# SKIFF_BENCH_QUICK=1 for 1 and 5), first deploys (every tool's app removed first) and redeploys, and keeps the
# tables under bench/results/. SKIFF_BENCH_PROFILE=FILE also writes a CPU profile of skiff at the largest fleet
# and, where Linux perf is installed, one of the targets (by command, and the programs started per deploy),
# SKIFF_BENCH_MEMPROFILE=FILE heap profiles; SKIFF_BENCH_TOOLS=skiff,floor runs some contenders only.
bench-fleet: build
	@scripts/deps.sh bench
	@scripts/bench.sh Fleet

# bench-serve sends 1,000 webhooks (valid, bad signature, duplicate) from 16 clients to `skiff serve` while a
# deploy runs, and reports requests/s, latency percentiles and the server's memory (targets: >= 1,000 req/s,
# p99 < 50 ms, < 60 MiB).
bench-serve: deps
	SKIFF_BENCH_SERVE=1 $(GO) test -count=1 -v -run '^TestBenchServe_Webhooks$$' ./serve/ | grep -E 'webhooks:|throughput|^(ok|FAIL|---)'

clean:
	rm -rf bin .sandbox
