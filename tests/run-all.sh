#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a developer's:
#   formatting and lints, Rust unit/integration/end-to-end tests (the real binary against the
#   real emulator), then real readers (DuckDB, pyarrow, pyspark) on a fresh demo drop.
# Debian packages the tests need (Java, Postgres, openssl) are installed when missing, and the
# Python readers live in a venv (.ci/venv, or $LPDROP_VENV), created here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Java for pyspark, python venv support: install only what is missing.
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
# Postgres server for the job-queue tests (they start their own on 127.0.0.1), openssl for the
# test certificates of the queue's TLS test.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -n "${LPDROP_PG_BIN:-}" ] || need+=(postgresql)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (Debian packages)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

venv=${LPDROP_VENV:-.ci/venv}
if ! "$venv/bin/python" -c "import duckdb, duckdb_extension_httpfs, pyarrow, pyspark, moto, boto3, pytest, cfnlint" 2>/dev/null; then
  echo "== installing the Python readers, moto, pytest and cfn-lint into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    -r tests/readers/requirements.txt -r tests/loader/requirements.txt
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --locked --workspace

echo "== cfn-lint deploy/aws"
"$venv/bin/cfn-lint" deploy/aws/lpdrop-customer.yaml

echo "== SQS loader end to end (moto, the real binary, DuckDB)"
LPDROP_BIN="$PWD/target/debug/lpdrop" "$venv/bin/python" -m pytest -q tests/loader

echo "== readers on a fresh demo drop"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cargo run --locked --quiet -- demo --out "$scratch/out"
marker=$(find "$scratch/out" -name upload.complete)
[ "$(echo "$marker" | wc -l)" -eq 1 ] || { echo "expected exactly one committed drop"; exit 1; }
SPARK_LOCAL_IP=127.0.0.1 "$venv/bin/python" tests/readers/check_drop.py "$(dirname "$marker")"
