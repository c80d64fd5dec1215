#!/usr/bin/env bash
# Fuzzes every target under fuzz/ for a bounded time each (FUZZ_SECONDS, default 60), one after
# the other, and prints per target the runs executed and the crashes found.
#
#   make fuzz                                  # every target, 60 s each
#   FUZZ_SECONDS=300 make fuzz                 # longer
#   FUZZ_TARGETS="jwt_verify delivery" make fuzz
#
# Needs the nightly toolchain (libFuzzer instrumentation) and cargo-fuzz, installed here pinned
# when missing. Seeds are read from fuzz/corpus/<target> (committed, small); what the fuzzer
# discovers goes to fuzz/target/corpus/<target> and crashing inputs to fuzz/artifacts/<target>
# (both ignored by git). Exit status: 0 when no target crashed, 1 otherwise.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ_DIR=$ROOT/fuzz
export PATH=$HOME/.cargo/bin:$PATH

say() { echo "[fuzz] $*"; }

if ! rustup toolchain list | grep -q '^nightly'; then
    say "installing the nightly toolchain (libFuzzer needs -Z flags)"
    rustup toolchain install nightly --profile minimal
fi
installed=$(cargo fuzz --version 2>/dev/null | awk '{print $2}' || true)
if [[ "$installed" != "$CARGO_FUZZ_VERSION" ]]; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION (found: ${installed:-none})"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

cd "$ROOT"
if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Safe Rust only: no sanitizer (twice the speed), but debug assertions on, so integer overflow
# and debug_assert! failures count as crashes.
BUILD_FLAGS=(--sanitizer none --debug-assertions)
say "building ${#targets[@]} targets (cargo +nightly fuzz build ${BUILD_FLAGS[*]})"
cargo +nightly fuzz build "${BUILD_FLAGS[@]}" >/dev/null

mkdir -p "$FUZZ_DIR/target/logs"
declare -a rows
failed=0
for target in "${targets[@]}"; do
    work="$FUZZ_DIR/target/corpus/$target"
    seeds="$FUZZ_DIR/corpus/$target"
    artifacts="$FUZZ_DIR/artifacts/$target"
    log="$FUZZ_DIR/target/logs/$target.log"
    mkdir -p "$work" "$seeds" "$artifacts"
    before=$(find "$artifacts" -type f | wc -l)
    extra=()
    case "$target" in
        jwt_verify | signature_headers | token_decrypt | cursor_decode | ranking_between | lead_query) ;;
        *) extra+=("-dict=$FUZZ_DIR/dict/json.dict") ;;
    esac
    say "$target: ${FUZZ_SECONDS}s"
    set +e
    cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" "$work" "$seeds" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
    status=$?
    set -e
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | awk '{print $2}' | tail -1 || true)
    if [[ -z "$runs" ]]; then runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true); fi
    after=$(find "$artifacts" -type f | wc -l)
    crashes=$((after - before))
    if [[ $status -ne 0 && $crashes -eq 0 ]]; then crashes=1; fi
    if [[ $crashes -gt 0 ]]; then
        failed=1
        say "$target: CRASH (log: ${log#"$ROOT"/})"
        { grep -E -A2 'panicked at' "$log" | head -6 || true; } | sed 's/^/    /'
    fi
    rows+=("$(printf '%-22s %12s %8s' "$target" "${runs:-0}" "$crashes")")
done

echo
printf '%-22s %12s %8s\n' target runs crashes
for row in "${rows[@]}"; do echo "$row"; done
if [[ $failed -ne 0 ]]; then
    say "crashes found: inputs are under fuzz/artifacts/<target>/; reproduce with cargo +nightly fuzz run <target> <file>"
    exit 1
fi
say "no crashes in ${#targets[@]} targets (${FUZZ_SECONDS}s each)"
