# Leadheat: `make dev` serves every worker locally; `make test` runs every test. Both install what a
# fresh machine is missing first (scripts/setup.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := help

WORKERS := api webhooks scoring sync
WORKER_OUTPUTS := $(foreach w,$(WORKERS),functions/$(w)/build/index.js)
# What every worker's wasm is built from besides its own crate.
COMMON_INPUTS := Cargo.toml Cargo.lock shared/Cargo.toml functions/edge/Cargo.toml \
	functions/usecases/Cargo.toml \
	$(shell find shared/src functions/edge/src functions/usecases/src -name '*.rs' 2>/dev/null)

export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false
export ESBUILD_BIN := $(CURDIR)/node_modules/.bin/esbuild
export WASM_BINDGEN_BIN := $(HOME)/.cargo/bin/wasm-bindgen
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: help setup build dev test test-native test-e2e lint fmt reset token clean move-org

help:
	@echo "make dev     install what is missing, build, migrate, serve every worker on http://127.0.0.1:\$${PORT:-8787}"
	@echo "make test    the same set-up, then lint and every test (unit, property, schema, end to end)"
	@echo "make build   build the workers that changed"
	@echo "make token  a development JWT: make token ORG=acme ROLE=admin"
	@echo "make reset   wipe the local D1 databases (.wrangler/state)"
	@echo "make move-org ORG=acme TO=1   move an org to another shard (needs make dev running)"
	@echo "make lint    cargo fmt --check and clippy -D warnings"
	@echo "make bench   the same set-up, then the benchmarks; writes bench/results/latest.md and latest.json"

setup:
	@bash scripts/setup.sh

build: setup $(WORKER_OUTPUTS)

# A worker whose build or strip step failed must not look built.
.DELETE_ON_ERROR:
.SECONDEXPANSION:
functions/%/build/index.js: $(COMMON_INPUTS) functions/%/Cargo.toml $$(shell find functions/$$*/src -name '*.rs')
	@echo "[build] $* worker (worker-build --release, wasm-opt off, name section stripped)"
	@worker-build --release functions/$* >/tmp/leadheat-build-$*.log 2>&1 \
		|| { cat /tmp/leadheat-build-$*.log; echo "[build] ERROR: building the $* worker failed (output above); fix the error and re-run."; exit 1; }
	@node scripts/strip-wasm-names.mjs functions/$*/build/index_bg.wasm >/dev/null
	@touch $@

dev: build
	@node dev/runtime.mjs

lint:
	@echo "[lint] cargo fmt --check"
	@cargo fmt --all -- --check
	@echo "[lint] cargo clippy --workspace --all-targets -D warnings"
	@cargo clippy --workspace --all-targets --quiet -- -D warnings

test: build lint
	@echo "[test] cargo test: unit, property, schema and end-to-end tests"
	@cargo test --workspace --no-fail-fast
	@$(MAKE) --no-print-directory test-browser

# Browser tests of the sales UI (ui/, served at /app/ by the API worker): headless Debian Chromium
# driven by playwright-core against the local runtime. scripts/browser-deps.sh installs Chromium
# when it is missing. Screenshots land in tests/artifacts/ (and docs/screenshots/ for the README).
.PHONY: test-browser
test-browser: build
	@bash scripts/browser-deps.sh
	@echo "[test] browser tests: node --test tests/browser/*.test.mjs"
	@node --test --test-concurrency=1 --test-reporter=spec tests/browser/*.test.mjs

fmt:
	@cargo fmt --all

# A development JWT for curl: `make token ORG=acme ROLE=admin` (ROLE: admin, member or viewer);
# NAME and EMAIL add the claims the org's member list shows.
ORG ?= acme
ROLE ?= admin
NAME ?=
EMAIL ?=
token:
	@TOKEN_NAME="$(NAME)" TOKEN_EMAIL="$(EMAIL)" cargo run --quiet -p leadheat-e2e --bin devtoken -- "$(ORG)" "$(ROLE)"

# Moves an org to another shard through the running `make dev` (docs/scaling.md):
# `make move-org ORG=acme TO=1`. Starts the move, then advances it until done, printing progress.
TO ?=
move-org:
	@test -n "$(TO)" || { echo "usage: make move-org ORG=<org> TO=<shard>"; exit 2; }
	@bash scripts/move-org.sh "$(ORG)" "$(TO)"

reset:
	@rm -rf .wrangler/state
	@echo "[reset] local D1 databases wiped; the next \`make dev\` starts empty"

clean: reset
	@cargo clean
	@rm -rf $(foreach w,$(WORKERS),functions/$(w)/build)

# Fuzzing (nightly + cargo-fuzz, installed pinned when missing): every fuzz/ target for
# FUZZ_SECONDS each (default 60), one after the other; prints runs and crashes per target.
.PHONY: fuzz
FUZZ_SECONDS ?= 60
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

# Benchmarks (bench/README.md): the same set-up and build as `make dev`, plus the bare baseline
# worker (never deployed: it is not in wrangler.toml), then every part.
.PHONY: bench
BENCH_BASELINE := bench/baseline/build/index.js

bench: build $(BENCH_BASELINE)
	@bash bench/run.sh

$(BENCH_BASELINE): $(COMMON_INPUTS) bench/baseline/Cargo.toml $(shell find bench/baseline/src -name '*.rs' 2>/dev/null)
	@echo "[build] bench baseline worker (worker-build --release, wasm-opt off)"
	@worker-build --release bench/baseline >/tmp/leadheat-build-bench-baseline.log 2>&1 \
		|| { cat /tmp/leadheat-build-bench-baseline.log; echo "[build] ERROR: building the bench baseline worker failed (output above)"; exit 1; }
	@node scripts/strip-wasm-names.mjs bench/baseline/build/index_bg.wasm >/dev/null
	@touch $@

# Soak: the end-to-end load test (tests/tests/load.rs) with SOAK_EVENTS webhook deliveries (default
# 10,000) while the stub platform APIs fail about 30 % of calls; prints the figures (docs/guarantees.md, "Soak").
.PHONY: soak
SOAK_EVENTS ?= 10000
SOAK_DRAIN_SECS ?= 1800
soak: build
	@echo "[soak] $(SOAK_EVENTS) webhook deliveries under faults: cargo test -p leadheat-e2e --test load -- --nocapture"
	@LOAD_EVENTS=$(SOAK_EVENTS) LOAD_DRAIN_SECS=$(SOAK_DRAIN_SECS) cargo test -p leadheat-e2e --test load -- --nocapture
