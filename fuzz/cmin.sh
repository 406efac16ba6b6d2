#!/usr/bin/env bash
# Rebuilds the committed corpus of each TARGET (default: all) from it and what
# run.sh found (fuzz/work/T): libFuzzer's -merge=1 keeps the smallest inputs that
# together reach every feature, then the largest are dropped until the target's
# corpus is at most KB kilobytes (default 40), so the repository stays small. The
# hand-made seed-* files are kept as they are. Run after fuzz/run.sh has built the
# targets: fuzz/cmin.sh [-s KB] [TARGET...]
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")"
kb=40
if [ "${1:-}" = "-s" ]; then
  kb=$2
  shift 2
fi
all=(wire_decode server_raw server_frames client_hostile pair_ops topic_match noalloc)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
triple=$(rustc -vV | sed -n 's/^host: //p')
for t in "${targets[@]}"; do
  bin=target/$triple/release/$t
  new=$(mktemp -d)
  mkdir -p corpus/$t work/$t
  "$bin" -merge=1 -rss_limit_mb=2048 -timeout=20 "$new" corpus/$t work/$t >/dev/null 2>&1
  # Seeds stay; merged inputs that duplicate a seed are dropped.
  seeds=(corpus/$t/seed-*)
  for f in "${seeds[@]}"; do
    rm -f "$new/$(sha1sum "$f" | cut -d' ' -f1)"
  done
  used=0
  [ ${#seeds[@]} = 0 ] || used=$(cat "${seeds[@]}" | wc -c)
  budget=$((kb * 1024 - used))
  # Largest first out until under budget.
  merged=("$new"/*)
  total=0
  [ ${#merged[@]} = 0 ] || total=$(cat "${merged[@]}" | wc -c)
  for f in $(ls -S "$new"); do
    [ "$total" -le "$budget" ] && break
    total=$((total - $(stat -c %s "$new/$f")))
    rm "$new/$f"
  done
  find corpus/$t -type f ! -name 'seed-*' -delete
  merged=("$new"/*)
  [ ${#merged[@]} = 0 ] || mv "${merged[@]}" corpus/$t/
  rm -rf "$new"
  printf '%-15s %5d files %7d bytes\n' "$t" "$(ls corpus/$t | wc -l)" "$(cat corpus/$t/* | wc -c)"
done
