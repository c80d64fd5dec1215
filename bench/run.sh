#!/usr/bin/env bash
# `make bench` (after `make build`, the same set-up as `make dev`): builds the benchmark binary
# and runs every part; writes bench/results/latest.md and latest.json and prints the table.
# Parts and sizes: BENCH_* variables (bench/README.md). Benchmarks never fail the build: the
# binary reports a part it could not complete and still exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "[bench] building the load generator (cargo build --release -p leadheat-bench)"
cargo build --release -p leadheat-bench --quiet

read -r load1 _ < /proc/loadavg
echo "[bench] machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load average ${load1}"
if awk -v l="$load1" 'BEGIN { exit !(l > 1.5) }'; then
  echo "[bench] note: the machine is busy; ratios stay meaningful (each baseline runs alongside), absolute figures are noisy"
fi

export CRITERION_HOME="${CRITERION_HOME:-$PWD/target/criterion}"
target/release/leadheat-bench
