#!/usr/bin/env python3
"""Upload throughput of a 1 GiB drop to Azurite: `lpdrop copy DROP --out az://...` against the
same files uploaded with Python's `azure-storage-blob`, in the same run, and peak memory.

1. A committed local drop of at least --gib GiB of files: `lpdrop emulator dump` writes a base
   set of pages, and `lpdrop convert --input -` is fed passes over it with fresh conversation
   ids (benches/run.py's stream_feed) until the drop is big enough (or --drop reuses one).
2. Azurite (tests/azurite.sh) on 127.0.0.1, in-memory, blob service only.
3. Turns, alternating so that a noisy neighbour slows both alike (best of --repeat each):
   - lpdrop: `lpdrop copy DROP --out az://bench/lpdrop-N`. It reads every file once to check
     its SHA-256 against the manifest, uploads small files with one Put Blob and large ones as
     8 MiB blocks, 4 in flight, 2 files at a time, then the manifest and the create-only marker.
   - Python: the same files under another prefix with `BlobClient.upload_blob`, given the same
     shape (single put up to 16 MiB, 8 MiB blocks, max_concurrency=4, 2 files at a time), then
     the manifest and the marker (`overwrite=False`). It checks nothing: the baseline is the
     upload alone.
   Each runs as its own process; peak memory is that process's `ru_maxrss` (wait4).
   The container is deleted between turns so Azurite's memory stays flat.

Usage: python3 benches/azure_upload.py [--bin target/release/lpdrop] [--gib 1] [--repeat 3]
Needs: the release binary, .ci/venv (azure-storage-blob), tests/azurite.sh (npm).
Prints a markdown table; paste it into benches/RESULTS.md.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import page_paths, stream_feed, timed  # noqa: E402

ACCOUNT = "devstoreaccount1"
# Azurite's one account and its documented key (the same in every Azurite; not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "bench"
LISTENING = re.compile(r"Azurite Blob service is successfully listening at http://127\.0\.0\.1:(\d+)")

PYTHON_UPLOAD = r'''
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from azure.storage.blob import ContainerClient
drop, conn, container, prefix = sys.argv[1:5]
client = ContainerClient.from_connection_string(conn, container, max_single_put_size=16 << 20,
                                                max_block_size=8 << 20)
files = []
for base, _, names in os.walk(drop):
    for name in names:
        rel = os.path.relpath(os.path.join(base, name), drop)
        if rel not in ("manifest.json", "upload.complete"):
            files.append(rel)
start = time.monotonic()
def put(rel):
    with open(os.path.join(drop, rel), "rb") as f:
        client.upload_blob(f"{prefix}/{rel}", f, overwrite=True, max_concurrency=4)
with ThreadPoolExecutor(2) as pool:
    list(pool.map(put, files))
for rel in ("manifest.json", "upload.complete"):
    with open(os.path.join(drop, rel), "rb") as f:
        client.upload_blob(f"{prefix}/{rel}", f, overwrite=False)
print(json.dumps({"seconds": time.monotonic() - start, "files": len(files) + 2}))
'''


def drop_bytes(drop):
    return sum(os.path.getsize(os.path.join(b, n)) for b, _, ns in os.walk(drop) for n in ns)


def make_drop(bin_path, scratch, gib):
    """A committed local drop of at least `gib` GiB; returns its folder."""
    base = os.path.join(scratch, "pages")
    print("writing a base set of 20,000 conversations ...", flush=True)
    timed([bin_path, "emulator", "dump", "--conversations", "20000", "--out", base])
    pages = page_paths(base)
    # About 2.7 KB of parquet per conversation of this data set; a little extra for safety.
    n = int(gib * (1 << 30) / 2_600)
    feed, mb = stream_feed(pages, n)
    out = os.path.join(scratch, "drop")
    print(f"converting {n:,} conversations ({mb / 1e6:.0f} MB of JSON) into a local drop ...", flush=True)
    timed([bin_path, "convert", "--input", "-", "--out", out], feed=feed)
    shutil.rmtree(base)
    markers = [b for b, _, ns in os.walk(out) if "upload.complete" in ns]
    assert len(markers) == 1, markers
    return markers[0]


def start_azurite(scratch):
    setup = subprocess.run(["bash", os.path.join(ROOT, "tests", "azurite.sh")], capture_output=True,
                           text=True, check=True)
    node, azurite_js = setup.stdout.split()
    log_path = os.path.join(scratch, "azurite.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([node, azurite_js, "--silent", "--inMemoryPersistence", "--disableTelemetry",
                             "--blobHost", "127.0.0.1", "--blobPort", "0",
                             "--queueHost", "127.0.0.1", "--queuePort", "0",
                             "--tableHost", "127.0.0.1", "--tablePort", "0",
                             "--skipApiVersionCheck", "--loose"],
                            cwd=scratch, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = LISTENING.search(open(log_path, errors="replace").read())
        if found:
            return proc, int(found[1])
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"Azurite did not start:\n{open(log_path).read()}")


def cpu_seconds(pid):
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "lpdrop"))
    ap.add_argument("--python", default=os.path.join(ROOT, ".ci", "venv", "bin", "python"),
                    help="a Python with azure-storage-blob")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--drop", help="reuse this committed local drop instead of making one")
    ap.add_argument("--scratch", help="folder for the drop (default: a new temporary folder)")
    args = ap.parse_args()

    scratch = args.scratch or tempfile.mkdtemp(prefix="lpdrop-azure-bench-")
    drop = args.drop or make_drop(args.bin, scratch, args.gib)
    size = drop_bytes(drop)
    files = sum(len(ns) for _, _, ns in os.walk(drop))
    largest = max(os.path.getsize(os.path.join(b, n)) for b, _, ns in os.walk(drop) for n in ns)
    print(f"drop: {drop}: {size / (1 << 30):.2f} GiB in {files} files (largest {largest / (1 << 20):.0f} MiB)",
          flush=True)

    azurite, port = start_azurite(scratch)
    conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env["AZURE_STORAGE_CONNECTION_STRING"] = conn
    reset = (f"from azure.storage.blob import BlobServiceClient as S; s = S.from_connection_string({conn!r})\n"
             f"try: s.delete_container({CONTAINER!r})\nexcept Exception: pass\n"
             f"import time\nfor _ in range(100):\n"
             f"    try: s.create_container({CONTAINER!r}); break\n"
             f"    except Exception: time.sleep(0.2)\n")
    results = {"lpdrop": [], "python": []}
    try:
        for turn in range(args.repeat):
            for who in ("lpdrop", "python"):
                subprocess.run([args.python, "-c", reset], check=True, env=env)
                azurite_cpu = cpu_seconds(azurite.pid)
                if who == "lpdrop":
                    secs, rss, out = timed([args.bin, "copy", drop, "--out", f"az://{CONTAINER}/lpdrop-{turn}"],
                                           env=env)
                    check = timed([args.bin, "verify",
                                   re.search(r"location\s+(\S+)", out)[1]], env=env)
                    assert "OK: drop" in check[2], check[2]
                else:
                    _, rss, out = timed([args.python, "-c", PYTHON_UPLOAD, drop, conn, CONTAINER,
                                         f"python-{turn}"], env=env)
                    secs = json.loads(out)["seconds"]
                # Azurite is one Node process: near one core busy means it is the bottleneck.
                busy = (cpu_seconds(azurite.pid) - azurite_cpu) / secs
                results[who].append((secs, rss, busy))
                print(f"  turn {turn + 1} {who}: {secs:.1f} s, {size / (1 << 20) / secs:.0f} MiB/s, "
                      f"peak RSS {rss:.0f} MiB, Azurite {busy:.2f} cores busy", flush=True)
    finally:
        azurite.terminate()
        azurite.wait()
        if not args.scratch and not args.drop:
            shutil.rmtree(scratch, ignore_errors=True)

    best = {who: min(r[0] for r in rs) for who, rs in results.items()}
    peak = {who: max(r[1] for r in rs) for who, rs in results.items()}
    mib = size / (1 << 20)
    print()
    busy = {who: max(r[2] for r in rs) for who, rs in results.items()}
    print(f"| uploader | best of {args.repeat} s | MiB/s | vs Python | peak RSS MiB | Azurite cores busy (max) |")
    print("|---|---|---|---|---|---|")
    for who, label in (("lpdrop", "`lpdrop copy` (checks each file's SHA-256 first)"),
                       ("python", "Python `azure-storage-blob` (same shape, no checks)")):
        print(f"| {label} | {best[who]:.1f} | {mib / best[who]:.0f} | {best['python'] / best[who]:.2f}x | "
              f"{peak[who]:.0f} | {busy[who]:.2f} |")
    print(f"\n{size / (1 << 30):.2f} GiB in {files} files, largest {largest / (1 << 20):.0f} MiB; "
          f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
