#!/usr/bin/env bash
# Builds the fuzz targets, replays every committed input, then runs each target
# for a bounded time, one at a time, each as one process (libFuzzer's default;
# -jobs/-workers would fork more): fuzz/run.sh [-k] SECONDS [TARGET...]
#
# Without TARGETs, every target; SECONDS 0 only replays. Inputs: the committed
# corpus (fuzz/corpus/T, read only) and the regressions (fuzz/regressions/T); new
# inputs go to fuzz/work/T (kept between runs, not committed), or, when CI is set
# and -k is not given, to a temporary folder. A failing input is written to
# fuzz/artifacts/ and the script exits 1. Prints one line per target: inputs
# replayed, executions, exec/s, coverage (cov = edges, ft = features), corpus.
# Where the toolchain cannot build the targets it says so, replays the committed
# inputs with the plain test harness (cargo test) instead, and exits with its
# result.
#
# Toolchain: cargo-fuzz needs nightly-only rustc flags (-Z...); the machines have
# only stable, so it runs with RUSTC_BOOTSTRAP=1, which lets a stable compiler take
# them (FUZZ_TOOLCHAIN=nightly uses an installed nightly instead). Targets are built without a
# sanitizer (`-s none`: weft-core forbids unsafe code, so AddressSanitizer finds
# nothing the Rust checks don't, at twice the cost) and with debug assertions
# (overflow checks). cargo-fuzz is installed with `cargo install --locked` if
# missing.
set -euo pipefail
cd "$(dirname "$0")"

keep=0
if [ "${1:-}" = "-k" ]; then
  keep=1
  shift
fi
secs=${1:?usage: run.sh [-k] SECONDS [TARGET...]}
shift
all=(wire_decode server_raw server_frames client_hostile pair_ops topic_match noalloc)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
# The machines have one stable toolchain; FUZZ_TOOLCHAIN=nightly (or another
# installed one) uses that instead.
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  tc=(+"$FUZZ_TOOLCHAIN")
else
  tc=()
  export RUSTC_BOOTSTRAP=1
fi
echo "toolchain: $(rustc "${tc[@]}" --version)${RUSTC_BOOTSTRAP:+ with RUSTC_BOOTSTRAP=1}"
# One target directory for both projects: they share every dependency but
# weft-core (built with and without alloc), libFuzzer's C++ included.
build=(fuzz build -s none -a --target-dir "$PWD/target")
triple=$(rustc -vV | sed -n 's/^host: //p')

need_main=0
need_noalloc=0
for t in "${targets[@]}"; do
  if [ "$t" = noalloc ]; then need_noalloc=1; else need_main=1; fi
done
blog=$(mktemp)
start=$(date +%s)
if ! { [ $need_main = 0 ] || cargo "${tc[@]}" "${build[@]}"; } >"$blog" 2>&1 ||
  ! { [ $need_noalloc = 0 ] || cargo "${tc[@]}" "${build[@]}" --fuzz-dir noalloc; } >>"$blog" 2>&1; then
  tail -30 "$blog"
  rm -f "$blog"
  # Where this toolchain cannot build libFuzzer targets, the committed inputs are
  # still replayed, by the plain test harness.
  echo "SKIPPED fuzzing: the fuzz targets do not build with this toolchain (above);"
  echo "replaying the committed inputs with cargo test instead"
  cargo test --locked --test replay
  (cd noalloc && cargo test --locked --test replay)
  exit 0
fi
rm -f "$blog"
echo "built in $(( $(date +%s) - start )) s"

mkdir -p artifacts
status=0
for t in "${targets[@]}"; do
  bin=target/$triple/release/$t
  inputs=()
  for d in corpus/$t regressions/$t; do
    [ -d "$d" ] && inputs+=("$d")
  done
  log=$(mktemp)
  # Every committed input once.
  set +e
  "$bin" -runs=0 -rss_limit_mb=2048 -timeout=20 -artifact_prefix="artifacts/$t-" \
    "${inputs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  n=0
  [ ${#inputs[@]} = 0 ] || n=$(find "${inputs[@]}" -type f | wc -l)
  if [ $rc -ne 0 ]; then
    echo "---- $t: a committed input fails (exit $rc):"
    grep -vE '^ +[0-9]+: |^ +at ' "$log" | tail -40
    rm -f "$log"
    status=1
    continue
  fi
  if [ "$secs" = 0 ]; then
    printf '%-15s replayed %d inputs\n' "$t" "$n"
    rm -f "$log"
    continue
  fi
  if [ -n "${CI:-}" ] && [ $keep = 0 ]; then
    out=$(mktemp -d)
  else
    out=work/$t
    mkdir -p "$out"
  fi
  set +e
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t-" "$out" "${inputs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  [ -n "$line" ] || line=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(echo "$line" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9A-Za-z]+' || true)
  printf '%-15s replayed %4d, fuzzed %4ss  %9s execs  %6s exec/s  %s\n' \
    "$t" "$n" "$secs" "${execs:-?}" "${rate:-?}" "$cov"
  if [ $rc -ne 0 ]; then
    status=1
    echo "---- $t failed (exit $rc); the end of its log:"
    grep -vE '^ +[0-9]+: |^ +at ' "$log" | tail -40
  fi
  rm -f "$log"
  if [ -n "${CI:-}" ] && [ $keep = 0 ]; then rm -rf "$out"; fi
done
exit $status
