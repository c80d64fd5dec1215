#!/usr/bin/env bash
# Moves one org to another shard through the local runtime's operator route (make move-org
# ORG=acme TO=1): starts the move, then advances it until it is done or failed, printing each
# state. Needs `make dev` running. The token is OPS_TOKEN from the environment, else from .dev.vars,
# else the development default of .dev.vars.example.
set -euo pipefail
ORG="${1:?usage: move-org.sh ORG TO}"
TO="${2:?usage: move-org.sh ORG TO}"
cd "$(dirname "$0")/.."
BASE="${LEADHEAT_URL:-http://127.0.0.1:${PORT:-8787}}/__dev/workers/scoring/ops"
token_from() { [[ -f "$1" ]] && sed -n 's/^OPS_TOKEN=//p' "$1" | tail -n 1; }
TOKEN="${OPS_TOKEN:-$(token_from .dev.vars)}"
TOKEN="${TOKEN:-$(token_from .dev.vars.example)}"
call() { curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -w '\n%{http_code}' "$@"; }
show() { node -e 'const m = JSON.parse(process.argv[1]); const c = m.counts || {};
  const sum = (t) => Object.values(t || {}).reduce((a, b) => a + b, 0);
  console.log(`[move-org] ${m.org_id}: shard ${m.from_shard} -> ${m.to_shard}, ${m.phase}` +
    (m.table ? ` at ${m.table}` : "") + `, copied ${sum(c.copied)} rows, deleted ${sum(c.deleted)}` +
    (m.stopped ? ` (stopped: ${m.stopped})` : "") + (m.error ? `; error: ${m.error}` : ""));' "$1"; }

out=$(call -X POST "$BASE/orgs/$ORG/move" -d "{\"to\": $TO}")
status=${out##*$'\n'}; body=${out%$'\n'*}
if [[ "$status" != 202 ]]; then echo "[move-org] refused ($status): $body" >&2; exit 1; fi
show "$body"
while true; do
  out=$(call "$BASE/orgs/$ORG/move"); status=${out##*$'\n'}; body=${out%$'\n'*}
  [[ "$status" == 200 ]] || { echo "[move-org] reading the move failed ($status): $body" >&2; exit 1; }
  phase=$(node -e 'console.log(JSON.parse(process.argv[1]).phase)' "$body")
  case "$phase" in
    done) show "$body"; echo "[move-org] done"; exit 0 ;;
    failed) show "$body"; echo "[move-org] FAILED; the org stays on its shard" >&2; exit 1 ;;
  esac
  out=$(call -X POST "$BASE/moves/advance"); status=${out##*$'\n'}; body=${out%$'\n'*}
  [[ "$status" == 200 ]] || { echo "[move-org] advancing failed ($status): $body" >&2; exit 1; }
  node -e 'for (const m of JSON.parse(process.argv[1]).moves) if (m.org_id === process.argv[2]) console.log(JSON.stringify(m))' "$body" "$ORG" \
    | while read -r line; do show "$line"; done
  sleep 1
done
