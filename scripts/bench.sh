#!/usr/bin/env bash
# bench.sh — the side-by-side benchmarks of bench/ (skiff against rsync, scp, tar|ssh, cat|ssh and, with
# `make bench-fleet`, Ansible and parallel-ssh). Prints the table with ratios and keeps it under bench/results/.
# SKIFF_BENCH_QUICK=1 runs a small smoke version.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
suffix=""
if [ "${SKIFF_BENCH_LARGE:-}" = 1 ]; then suffix=-large; fi
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-${1:-source}${suffix}.txt"
pattern="${1:-Source}"
# A fleet of 200 hosts has every tool hold a few descriptors per host at once (parallel-ssh, Ansible's forks).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
go test -run '^$' -bench "Benchmark${pattern}" -benchtime 1x -timeout 90m ./bench/ ./deploy/ ./ship/ 2>&1 | tee "$out"
echo "results kept in $out"
