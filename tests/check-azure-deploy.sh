#!/usr/bin/env bash
# Offline checks of deploy/azure (the customer side on Azure), without Azure, the az CLI or
# the Bicep CLI:
#   1. lpdrop-customer.json parses, its template expressions are balanced, and it declares the
#      same parameters (type, default, bounds, allowed values), resources (type, API version,
#      condition), outputs and checkov skips as lpdrop-customer.bicep;
#   2. checkov (frameworks bicep and arm) passes on deploy/azure. A check may be skipped only in
#      the template itself, with a reason: `//checkov:skip=CKV_...: reason` in the Bicep resource,
#      "metadata": {"checkov": ["checkov:skip=CKV_...: reason"]} in the ARM resource.
# checkov lives in its own venv (${LPDROP_AZURE_VENV:-.ci/venv-azure}), installed here from
# deploy/requirements-azure-check.txt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${LPDROP_AZURE_VENV:-.ci/venv-azure}
req=deploy/requirements-azure-check.txt
want=$(sed -n 's/^checkov==//p' "$req")
have=$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('checkov'))" 2>/dev/null || true)
if [ "$have" != "$want" ] || [ ! -x "$venv/bin/checkov" ]; then
  echo "== installing checkov $want into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
fi

echo "== deploy/azure: the ARM template parses and matches the Bicep"
"$venv/bin/python" - deploy/azure/lpdrop-customer.bicep deploy/azure/lpdrop-customer.json <<'PY'
import json
import re
import sys

bicep_path, arm_path = sys.argv[1:3]
errors = []

with open(arm_path) as f:
    try:
        arm = json.load(f)
    except json.JSONDecodeError as e:
        sys.exit(f"{arm_path}: not JSON: {e}")
bicep = open(bicep_path).read()


def balanced(expr):
    """A template expression: parentheses and brackets balance outside '...' strings."""
    depth, quoted, i = [], False, 0
    pairs = {")": "(", "]": "["}
    while i < len(expr):
        c = expr[i]
        if quoted:
            if c == "'":
                if expr[i + 1:i + 2] == "'":
                    i += 1  # '' is an escaped quote
                else:
                    quoted = False
        elif c == "'":
            quoted = True
        elif c in "([":
            depth.append(c)
        elif c in ")]":
            if not depth or depth.pop() != pairs[c]:
                return False
        i += 1
    return not quoted and not depth


def walk(node, path="$"):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for n, v in enumerate(node):
            yield from walk(v, f"{path}[{n}]")
    else:
        yield path, node


for path, value in walk(arm):
    if isinstance(value, str) and value.startswith("[") and not value.startswith("[["):
        if not value.endswith("]") or not balanced(value[1:-1]):
            errors.append(f"{arm_path} {path}: unbalanced expression {value}")


def bicep_literal(text):
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    m = re.fullmatch(r"'((?:[^'\\$]|\\.)*)'", text)
    if m:
        return m.group(1).replace("\\'", "'")
    return None  # an expression: not compared


# Bicep parameters with their decorators.
params, decorators, lines, i = {}, {}, bicep.splitlines(), 0
while i < len(lines):
    line = lines[i].strip()
    if line.startswith("@allowed(["):
        values = []
        i += 1
        while not lines[i].strip().startswith("])"):
            values.append(bicep_literal(lines[i]))
            i += 1
        decorators["allowedValues"] = values
    elif m := re.fullmatch(r"@(minLength|maxLength|minValue|maxValue)\((-?\d+)\)", line):
        decorators[m.group(1)] = int(m.group(2))
    elif m := re.fullmatch(r"param (\w+) (\w+)(?: = (.*))?", line):
        p = {"type": m.group(2), **decorators}
        if m.group(3) is not None:
            p["defaultValue"] = bicep_literal(m.group(3))
        params[m.group(1)] = p
        decorators = {}
    elif line.startswith("@description(") or not line or line.startswith("//"):
        pass
    else:
        decorators = {}
    i += 1

arm_params = arm.get("parameters", {})
if set(params) != set(arm_params):
    errors.append(f"parameters differ: only in Bicep {sorted(set(params) - set(arm_params))}, "
                  f"only in ARM {sorted(set(arm_params) - set(params))}")
for name in sorted(set(params) & set(arm_params)):
    b, a = params[name], arm_params[name]
    for key in ("type", "allowedValues", "minLength", "maxLength", "minValue", "maxValue"):
        if b.get(key) != a.get(key):
            errors.append(f"parameter {name}: {key} is {b.get(key)!r} in Bicep, {a.get(key)!r} in ARM")
    if ("defaultValue" in b) != ("defaultValue" in a):
        errors.append(f"parameter {name}: a default in only one of the two templates")
    elif b.get("defaultValue") is not None and b["defaultValue"] != a["defaultValue"]:
        errors.append(f"parameter {name}: default {b['defaultValue']!r} in Bicep, {a['defaultValue']!r} in ARM")
    if not a.get("metadata", {}).get("description"):
        errors.append(f"parameter {name}: no description in ARM")

# Resources: type, API version and whether they are conditional.
bicep_resources = sorted(
    (t, v, cond != "")
    for t, v, cond in re.findall(r"^resource \w+ '([^'@]+)@([^']+)' = (if \()?", bicep, re.M))
arm_resources = sorted((r["type"], r["apiVersion"], "condition" in r) for r in arm.get("resources", []))
if bicep_resources != arm_resources:
    errors.append("resources differ (type, apiVersion, conditional):\n  Bicep " + repr(bicep_resources)
                  + "\n  ARM   " + repr(arm_resources))

bicep_outputs = dict(re.findall(r"^output (\w+) (\w+) =", bicep, re.M))
arm_outputs = {k: v["type"] for k, v in arm.get("outputs", {}).items()}
if bicep_outputs != arm_outputs:
    errors.append(f"outputs differ: Bicep {bicep_outputs}, ARM {arm_outputs}")

# checkov skips: the same checks in both, each with a reason.
skip_re = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::\s*(.*))?")
bicep_skips = {m.group(1): m.group(2) for m in skip_re.finditer(bicep)}
arm_skips = {}
for r in arm.get("resources", []):
    for item in r.get("metadata", {}).get("checkov", []):
        m = skip_re.search(item)
        if m:
            arm_skips[m.group(1)] = m.group(2)
for where, skips in (("Bicep", bicep_skips), ("ARM", arm_skips)):
    for check, reason in skips.items():
        if not reason or len(reason.strip()) < 20:
            errors.append(f"{where}: checkov skip {check} without a reason")
if set(bicep_skips) != set(arm_skips):
    errors.append(f"checkov skips differ: Bicep {sorted(bicep_skips)}, ARM {sorted(arm_skips)}")

# What the template is for, checked where it is easy to get wrong.
by_type = {}
for r in arm.get("resources", []):
    by_type.setdefault(r["type"], []).append(r)
sa = by_type["Microsoft.Storage/storageAccounts"][0]["properties"]
expected = {"minimumTlsVersion": "TLS1_2", "supportsHttpsTrafficOnly": True, "allowBlobPublicAccess": False,
            "allowSharedKeyAccess": "[parameters('allowSharedKeyAccess')]"}
for key, value in expected.items():
    if sa.get(key) != value:
        errors.append(f"ARM storage account: {key} is {sa.get(key)!r}, expected {value!r}")
if arm_params["allowSharedKeyAccess"].get("defaultValue") is not False:
    errors.append("allowSharedKeyAccess must default to false (Entra ID only)")
sub = by_type["Microsoft.EventGrid/systemTopics/eventSubscriptions"][0]["properties"]
flt = sub["filter"]
if flt.get("includedEventTypes") != ["Microsoft.Storage.BlobCreated"] or flt.get("subjectEndsWith") != "/upload.complete":
    errors.append(f"event subscription filter: {flt}")
if "/blobServices/default/containers/{0}/blobs/{1}" not in flt.get("subjectBeginsWith", ""):
    errors.append(f"event subscription subjectBeginsWith: {flt.get('subjectBeginsWith')}")
if sub["deliveryWithResourceIdentity"]["destination"]["endpointType"] != "StorageQueue":
    errors.append("event subscription: destination is not a Storage Queue")
contributor = [r for r in by_type["Microsoft.Authorization/roleAssignments"]
               if "blobDataContributorRoleId" in r["properties"]["roleDefinitionId"]]
if len(contributor) != 1 or "/containers/" not in contributor[0].get("scope", ""):
    errors.append("Storage Blob Data Contributor: expected one assignment scoped to the container")
if arm["variables"].get("blobDataContributorRoleId") != "ba92f5b4-2d11-453d-a403-e96b0b4c0feb":
    errors.append("blobDataContributorRoleId is not Storage Blob Data Contributor")
for needle in ("subjectEndsWith: '/upload.complete'", "'Microsoft.Storage.BlobCreated'",
               "minimumTlsVersion: 'TLS1_2'", "supportsHttpsTrafficOnly: true", "allowBlobPublicAccess: false",
               "var blobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0b4c0feb'"):
    if needle not in bicep:
        errors.append(f"{bicep_path}: missing {needle}")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(params)} parameters, {len(arm_resources)} resources, {len(arm_outputs)} outputs, "
      f"checkov skips {sorted(arm_skips)} in both")
PY

echo "== checkov deploy/azure (bicep, arm)"
# --skip-download: offline, nothing is fetched from the checkov platform. LOG_LEVEL=ERROR keeps
# the parser's warnings about unresolved parameters out of the output.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
LOG_LEVEL=ERROR "$venv/bin/checkov" -d deploy/azure --framework bicep arm --quiet --compact \
  --skip-download >"$out" 2>&1 || rc=$?
cat "$out"
if [ "$rc" -ne 0 ]; then
  echo "checkov failed (exit $rc): fix the template, or skip the check in it with a reason" >&2
  exit 1
fi
# A template checkov cannot parse yields no result and no failure: both must have been scanned.
for framework in bicep arm; do
  grep -A2 "^$framework scan results:" "$out" | grep -qE "Passed checks: [1-9]" || {
    echo "checkov scanned no $framework resource in deploy/azure" >&2
    exit 1
  }
done
