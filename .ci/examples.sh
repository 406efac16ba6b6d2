#!/usr/bin/env bash
# Runs the examples against each other: weft-tokio's server, then weft-tokio's
# request/response client, pub/sub, stream copy and PSK examples and weft-mio's
# blocking client, then a Ctrl-C (SIGINT) that must shut the server down
# gracefully; then weft-uring's server, with weft-tokio's client and weft-mio's
# blocking client, shut down gracefully by the end of its input. Every wait is
# bounded; any failure fails CI. CI requires io_uring, as the weft-uring tests
# do: where it is unavailable this fails, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p weft-tokio -p weft-mio -p weft-uring --examples
# Where cargo put them: CARGO_TARGET_DIR if set (CI may share a cache), else target/.
bin="${CARGO_TARGET_DIR:-target}/debug/examples"
dir=$(mktemp -d)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# Prints the address a server example (pid $1, log $2) listens on, once its log
# says; fails if it exits first or takes longer than 30 s.
listening() {
  local addr=""
  for _ in $(seq 1 300); do
    addr=$(sed -n 's/^listening on //p' "$2")
    [ -n "$addr" ] && { echo "$addr"; return 0; }
    kill -0 "$1" 2>/dev/null || { cat "$2" >&2; echo "the server example exited" >&2; return 1; }
    sleep 0.1
  done
  cat "$2" >&2
  echo "the server example never listened" >&2
  return 1
}

# Waits, at most 60 s, for a server example (pid $1, log $2) told to stop by $3
# to exit, and checks that it exited well and after a graceful shutdown.
stopped() {
  if ! timeout 60 tail --pid="$1" -f /dev/null; then
    echo "the server example did not shut down within 60 s of $3" >&2
    exit 1
  fi
  wait "$1"
  grep -q "all connections closed" "$2" || { cat "$2"; echo "no graceful shutdown after $3" >&2; exit 1; }
}

# weft-tokio's server. Port 0: the server prints the address it got. --for: a
# backstop, never reached.
log="$dir/tokio.log"
"$bin/server" 127.0.0.1:0 --for 300 >"$log" 2>&1 &
pid=$!
pids="$pids $pid"
addr=$(listening "$pid" "$log")
echo "server example on $addr"
timeout 60 "$bin/client" "$addr"
timeout 60 "$bin/pubsub" "$addr"
timeout 60 "$bin/stream_copy" "$addr" Cargo.toml
timeout 60 "$bin/psk"
timeout 60 "$bin/blocking_client" "$addr"
kill -INT "$pid"
stopped "$pid" "$log" "Ctrl-C"

# weft-uring's server, its input a pipe this script holds open until the end.
log="$dir/uring.log"
mkfifo "$dir/uring-input"
"$bin/uring_server" 127.0.0.1:0 --for 300 <"$dir/uring-input" >"$log" 2>&1 &
pid=$!
pids="$pids $pid"
exec 3>"$dir/uring-input"
if ! addr=$(listening "$pid" "$log"); then
  if grep -q "io_uring unavailable" "$log"; then
    echo "io_uring unavailable: uring example not run, and CI requires io_uring (as the weft-uring tests do)" >&2
  fi
  exit 1
fi
echo "uring server example on $addr"
timeout 60 "$bin/client" "$addr"
timeout 60 "$bin/blocking_client" "$addr"
# The end of its input: a graceful shutdown.
exec 3>&-
stopped "$pid" "$log" "the end of its input"
echo "examples ran against each other"
