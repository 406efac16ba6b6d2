#!/usr/bin/env bash
# Runs weft-tokio's examples against each other: the server, then the
# request/response client, pub/sub, the stream copy and PSK examples, then a
# Ctrl-C (SIGINT) that must shut the server down gracefully. Every wait is
# bounded; any failure fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p weft-tokio --examples
# Where cargo put them: CARGO_TARGET_DIR if set (CI may share a cache), else target/.
bin="${CARGO_TARGET_DIR:-target}/debug/examples"
log=$(mktemp)
# Port 0: the server prints the address it got. --for: a backstop, never reached.
"$bin/server" 127.0.0.1:0 --for 300 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
addr=""
for _ in $(seq 1 300); do
  addr=$(sed -n 's/^listening on //p' "$log")
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "the server example exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log"; echo "the server example never listened" >&2; exit 1; }
echo "server example on $addr"
timeout 60 "$bin/client" "$addr"
timeout 60 "$bin/pubsub" "$addr"
timeout 60 "$bin/stream_copy" "$addr" Cargo.toml
timeout 60 "$bin/psk"
kill -INT "$pid"
if ! timeout 60 tail --pid="$pid" -f /dev/null; then
  echo "the server example did not shut down within 60 s of Ctrl-C" >&2
  exit 1
fi
wait "$pid"
grep -q "all connections closed" "$log" || { cat "$log"; echo "no graceful shutdown" >&2; exit 1; }
echo "examples ran against each other"
