#!/usr/bin/env bash
# Fuzzes the LivePerson page and record decoders (and the table splitter behind them) with
# cargo fuzz / libFuzzer, on the STABLE toolchain, for a bounded time per target; fails if any
# target finds a crash (a panic, an abort, a timeout or running out of memory).
#
#   bash tests/fuzz.sh                        # every target, 45 s each (CI)
#   FUZZ_SECONDS=600 bash tests/fuzz.sh       # longer: 10 minutes each
#   FUZZ_TARGETS=page_decoder FUZZ_SECONDS=3600 FUZZ_SANITIZER=address bash tests/fuzz.sh
#   FUZZ_SECONDS=0 bash tests/fuzz.sh         # only replay the corpus (regression check)
#
# Targets (fuzz/fuzz_targets/): page_decoder, record_decoder, chat_page_decoder,
# entity_decoder; see fuzz/README.md. The corpus (fuzz/corpus/<target>/, not committed) is
# seeded from the vendor examples in tests/fixtures/liveperson-docs and fuzz/seeds/, and kept
# between runs on the same machine; crashes are written to fuzz/artifacts/<target>/.
#
# Stable, not nightly: cargo-fuzz builds with stable -C flags (sancov coverage, debug
# assertions, overflow checks). With FUZZ_SANITIZER=address it also passes -Zsanitizer=address,
# which RUSTC_BOOTSTRAP=1 lets the stable compiler accept (the ASan runtime ships with the
# stable x86_64 Linux toolchain). The default is no sanitizer: the code under test is safe
# Rust, and the build and the runs are faster.
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 45; 0 replays the corpus only)
#   FUZZ_TARGETS    space-separated targets (default: all four)
#   FUZZ_SANITIZER  none (default) or address
#   FUZZ_TIMEOUT    seconds one input may take before libFuzzer calls it a hang (default 10)
#   FUZZ_ARGS       extra libFuzzer arguments (e.g. "-jobs=2 -workers=2", "-seed=1")
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-45}
targets=${FUZZ_TARGETS:-page_decoder record_decoder chat_page_decoder entity_decoder}
sanitizer=${FUZZ_SANITIZER:-none}
timeout=${FUZZ_TIMEOUT:-10}
export CARGO_TERM_COLOR=never

# The stable toolchain, even on a machine whose rustup also has a nightly.
if [ -z "${RUSTUP_TOOLCHAIN:-}" ] && command -v rustup >/dev/null 2>&1 \
  && rustup toolchain list | grep '^stable' >/dev/null; then
  export RUSTUP_TOOLCHAIN=stable
fi
export RUSTC_BOOTSTRAP=1
echo "== fuzzing on $(rustc --version) (sanitizer: $sanitizer, ${seconds}s per target)"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! cargo fuzz --version 2>/dev/null | grep -F "$CARGO_FUZZ_VERSION" >/dev/null; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# The crates under test build with the versions the workspace locks: the fuzz package starts
# from a copy of Cargo.lock, and cargo adds only the fuzzing crates (libfuzzer-sys, arbitrary).
cp Cargo.lock fuzz/Cargo.lock
bash fuzz/seed-corpus.sh

echo "== cargo fuzz build"
started=$(date +%s)
cargo fuzz build --sanitizer "$sanitizer"
echo "built in $(($(date +%s) - started)) s"

logs=fuzz/target/logs
mkdir -p "$logs"
failed=()
summary=()
for t in $targets; do
  if [ "$seconds" -eq 0 ]; then
    limit=(-runs=0)
  else
    limit=(-max_total_time="$seconds")
  fi
  echo "== $t"
  log=$logs/$t.log
  # shellcheck disable=SC2086 # FUZZ_ARGS is split on purpose
  if cargo fuzz run "$t" --sanitizer "$sanitizer" "fuzz/corpus/$t" -- \
    "${limit[@]}" -timeout="$timeout" -rss_limit_mb=2048 -dict=fuzz/liveperson.dict \
    -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    echo "-- $t found a crash; the end of $log:"
    tail -n 60 "$log"
    ls -1 "fuzz/artifacts/$t" 2>/dev/null | sed "s|^|   fuzz/artifacts/$t/|"
    echo "-- reproduce: RUSTUP_TOOLCHAIN=stable RUSTC_BOOTSTRAP=1 cargo fuzz run $t --sanitizer $sanitizer <artifact>"
  fi
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  corpus=$(echo "$done_line" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
  cov=$(echo "$done_line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  line="$t: $status, ${execs:-?} execs (${rate:-?}/s), corpus ${corpus:-?}, coverage ${cov:-?}"
  echo "$line"
  summary+=("$line")
done

echo "== fuzz summary (${seconds}s per target, logs in $logs)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]}"
  exit 1
fi
echo "${#summary[@]} passed, 0 failed"
