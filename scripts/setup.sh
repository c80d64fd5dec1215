#!/usr/bin/env bash
# Installs what a fresh machine is missing to build and run Leadheat locally. Every step checks the
# installed version first and is skipped when it already matches; every failure says what to do.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
NODE_MIN_MAJOR=20

step() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is not installed; install Rust with rustup (https://rustup.rs) and re-run."
command -v rustup >/dev/null || die "rustup is not installed; the wasm32 target is added through rustup, so install Rust with rustup and re-run."
command -v node >/dev/null || die "Node.js is not installed; install Node.js ${NODE_MIN_MAJOR} or newer and re-run."
command -v npm >/dev/null || die "npm is not installed; install it with Node.js ${NODE_MIN_MAJOR}+ and re-run."

node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge "$NODE_MIN_MAJOR" ] || die "Node.js $(node --version) is too old; install Node.js ${NODE_MIN_MAJOR} or newer."

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "wasm32-unknown-unknown target: present"
else
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown || die "could not add the wasm32 target (output above); check the network access of rustup and re-run."
fi

installed_version() { # prints the version a binary reports, or nothing
  command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | awk '{print $NF}' | head -n1 || true
}

if [ "$(installed_version worker-build)" = "$WORKER_BUILD_VERSION" ]; then
  step "worker-build ${WORKER_BUILD_VERSION}: present"
else
  step "installing worker-build ${WORKER_BUILD_VERSION} from crates.io (about 5 minutes on 2 cores)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked \
    || die "installing worker-build failed (output above); check that crates.io is reachable and re-run."
fi

# The wasm-bindgen CLI must equal the library version in Cargo.lock exactly, or the generated glue breaks.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
[ -n "$bindgen_version" ] || die "Cargo.lock has no wasm-bindgen entry; run \`cargo generate-lockfile\` and re-run."
if [ "$(installed_version wasm-bindgen)" = "$bindgen_version" ]; then
  step "wasm-bindgen CLI ${bindgen_version}: present"
else
  step "installing wasm-bindgen CLI ${bindgen_version} (matches Cargo.lock; about 3 minutes)"
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked \
    || die "installing wasm-bindgen-cli ${bindgen_version} failed (output above); check that crates.io is reachable and re-run."
fi

# npm ci only when node_modules was not installed from this exact lock file.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f node_modules/.leadheat-lock.sha256 ] && [ "$(cat node_modules/.leadheat-lock.sha256)" = "$lock_sum" ]; then
  step "npm packages: installed from the current package-lock.json"
else
  step "installing npm packages from package-lock.json (npm ci)"
  npm ci --no-audit --no-fund || die "npm ci failed (output above); check that the npm registry is reachable and re-run."
  echo "$lock_sum" > node_modules/.leadheat-lock.sha256
fi

if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  step "created .dev.vars from .dev.vars.example (development values only)"
fi
step "done"
