#!/usr/bin/env python3
"""`lpdrop convert` throughput of two binaries on the same saved pages, measured in turns.

For a change that must not slow convert down (a refactor), build the binary before and after
the change and run:

    python3 benches/compare_convert.py BEFORE_BIN AFTER_BIN [--conversations N] [--repeat R]

The pages are written once (by AFTER_BIN's `emulator dump`), then each binary converts them R
times, alternating, so that a noisy neighbour slows both alike; the best run of each counts.
Prints MB/s of each and the ratio after/before, and checks both drops hold the same rows.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def rows_by_table(drop_root):
    manifests = [os.path.join(d, "manifest.json") for d, _, fs in os.walk(drop_root) if "manifest.json" in fs]
    if len(manifests) != 1:
        sys.exit(f"expected one committed drop under {drop_root}, found {len(manifests)}")
    manifest = json.load(open(manifests[0]))
    return {t["name"]: t["rows"] for t in manifest["tables"]}


def convert(binary, pages, out):
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LP_", "LPDROP_"))}
    started = time.perf_counter()
    subprocess.run([binary, "-q", "convert", "--input", pages, "--out", out], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--conversations", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="lpdrop-compare-")
    try:
        pages = os.path.join(scratch, "pages")
        subprocess.run([args.after, "emulator", "dump", "--conversations", str(args.conversations),
                        "--out", pages], check=True, stdout=subprocess.DEVNULL)
        mb = dir_bytes(pages) / 1e6
        best = {"before": float("inf"), "after": float("inf")}
        for attempt in range(args.repeat):
            for name in ("before", "after"):
                secs = convert(getattr(args, name), pages, os.path.join(scratch, name))
                best[name] = min(best[name], secs)
                print(f"run {attempt + 1}/{args.repeat} {name}: {mb / secs:.1f} MB/s", flush=True)
        if rows_by_table(os.path.join(scratch, "before")) != rows_by_table(os.path.join(scratch, "after")):
            sys.exit("the two binaries wrote different rows")
        before, after = mb / best["before"], mb / best["after"]
        print(f"{args.conversations} conversations, {mb:.0f} MB of pages, best of {args.repeat}, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        print(f"before {before:.1f} MB/s, after {after:.1f} MB/s, after/before {after / before:.3f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
