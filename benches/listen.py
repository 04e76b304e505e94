#!/usr/bin/env python3
"""Benchmark of `lpdrop listen` on this machine: throughput, ack latency, receive-to-drop latency.

    CARGO_TARGET_DIR=/work/target-rel cargo build --release --bin lpdrop
    python3 benches/listen.py --bin /work/target-rel/release/lpdrop \\
        --parquet-python /work/main/.ci/venv/bin/python

(defaults: --bin target/release/lpdrop, --conversations 8000 (about 310k events),
--concurrency 64, --roll-every 10s, --roll-events 100000 (the listener's default),
--load-seconds 30, --load-fraction 0.8, --probe-rate 200; --json FILE also writes the summary
there). Python's standard library only; reading the drops' parquet needs
duckdb or pyarrow in --parquet-python (default: this interpreter).

One listener (temporary spool and out folders, free ports, --roll-every 10s, /metrics on) is
measured in three phases:

  a) sustained rate: `lpdrop emulator --webhook-url ... --webhook-conversations N
     --webhook-concurrency 64` with no rate limit, timed from start to exit; events/s is the
     summary's events_sent over that wall time (notifications/s likewise with
     notifications_acked). lpdrop_webhook_ack_duration_seconds is read from /metrics before
     and after, and its quantiles interpolated (coarse buckets: indicative only).
     Why 8000 conversations and not 2700 (about 100k events): at ~20k events/s 100k events
     take 5 s, less than one --roll-every, so no drop is published meanwhile and the figure
     is a burst rate of acks alone; 80% of it is more than the listener sustains while it
     also publishes drops, so (b) would not run at 80%. 310k events span two rolls or more.
  b) ack latency at --load-fraction (0.8) of (a)'s rate, for --load-seconds: the emulator
     carries the load, paced with --webhook-rate at 0.8 x (a)'s events/s (conversations
     after (a)'s, so no body repeats one of (a)); meanwhile a threaded Python probe POSTs
     signed notifications (the vendor fixtures of tests/fixtures/liveperson-docs/webhooks/
     with a fresh dialogId and sequence each, so every body is distinct) open-loop at
     --probe-rate (200/s) over keep-alive connections and times each request from send to
     status line: client-side p50/p99/max at that load. Python alone cannot generate 80% of
     (a) on this machine (about 6k req/s at best with 32 threads, against ~20k), hence the
     split. The server's histogram for the same interval is reported beside it.
  c) receive-to-drop latency: once a timed roll has published everything, the listener is
     stopped (SIGTERM); for every committed drop, upload.complete's mtime minus each row's
     received_at in parquet/webhook_events/*.parquet, over all rows of (a) and (b), and over
     the rows received during (b) alone (steady rate). At (b)'s rate --roll-events can close
     a roll before --roll-every does; the drop count shows it.

Prints a table and one JSON object (the last line on stdout).
"""

import argparse
import base64
import glob
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SECRET = "bench-webhook-secret"
ACCOUNT = "12345678"  # the emulator's account
CLIENT = "lpdrop-emulator"  # the emulator's default --webhook-client-id
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "tests", "fixtures", "liveperson-docs", "webhooks")
FIXTURE_NAMES = ["agent-text-seq2.json", "agent-text-seq3.json", "consumer-text-seq0.json",
                 "agent-read-seq1.json"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quantile(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


def get(url, timeout=5):
    host, _, rest = url.removeprefix("http://").partition("/")
    h, p = host.split(":")
    c = http.client.HTTPConnection(h, int(p), timeout=timeout)
    c.request("GET", "/" + rest)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


def metrics(addr):
    """{(name, labels): value} of the listener's /metrics."""
    _, text = get(f"http://{addr}/metrics")
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def histogram(snapshot, name):
    """[(le, cumulative count)] sorted, from a metrics snapshot."""
    buckets = []
    for (n, labels), v in snapshot.items():
        if n == name + "_bucket":
            le = re.search(r'le="([^"]+)"', labels).group(1)
            buckets.append((float("inf") if le == "+Inf" else float(le), v))
    return sorted(buckets)


def hist_delta(before, after, name):
    b = dict(histogram(before, name))
    return [(le, c - b.get(le, 0.0)) for le, c in histogram(after, name)]


def hist_quantile(buckets, q):
    """Prometheus histogram_quantile: linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def proc_stats(pid):
    """(peak RSS in MiB, CPU seconds) of a live process."""
    hwm = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return hwm, (int(fields[11]) + int(fields[12])) / ticks


def sign(body):
    mac = hmac.new(SECRET.encode(), body, hashlib.sha1).digest()
    return "sha1=" + base64.b64encode(mac).decode()


def make_bodies(n):
    templates = []
    for name in FIXTURE_NAMES:
        with open(os.path.join(FIXTURES, name)) as f:
            templates.append(json.load(f))
    bodies = []
    for i in range(n):
        doc = json.loads(json.dumps(templates[i % len(templates)]))
        for ch in doc["body"]["changes"]:
            ch["dialogId"] = str(uuid.uuid4())
            if "sequence" in ch:
                ch["sequence"] = i
            ch["serverTimestamp"] = int(time.time() * 1000)
        body = json.dumps(doc, separators=(",", ":")).encode()
        bodies.append((body, sign(body), len(doc["body"]["changes"])))
    return bodies


def load(addr, rate, seconds, threads):
    """Open-loop POSTs at `rate`/s for `seconds`; per-request timings."""
    n = int(rate * seconds)
    bodies = make_bodies(n)
    host, port = addr.split(":")
    lock = threading.Lock()
    nxt = [0]
    results = []  # (service latency s, lag behind schedule s, status)
    t0 = time.perf_counter() + 0.5

    def worker():
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        mine = []
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                break
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            body, sig, _ = bodies[i]
            start = time.perf_counter()
            try:
                conn.request("POST", "/webhooks", body=body, headers={
                    "Content-Type": "application/json",
                    "X-LivePerson-Signature": sig,
                    "X-LivePerson-Account-Id": ACCOUNT,
                    "X-LivePerson-Client-Id": CLIENT,
                })
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
            end = time.perf_counter()
            mine.append((end - start, start - due, status))
        conn.close()
        with lock:
            results.extend(mine)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    events = sum(b[2] for b in bodies)
    return results, wall, n, events


READ_PARQUET = r"""
import json, sys
files = json.loads(sys.argv[1])
out = {}
try:
    import duckdb
    for drop, paths in files.items():
        q = "select epoch_ms(received_at) from read_parquet(%s)" % json.dumps(paths).replace('"', "'")
        out[drop] = [r[0] for r in duckdb.sql(q).fetchall()]
except ImportError:
    import pyarrow.parquet as pq
    for drop, paths in files.items():
        vals = []
        for p in paths:
            col = pq.read_table(p, columns=["received_at"]).column(0).cast("int64")
            vals.extend(col.to_pylist())
        out[drop] = vals
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--bin", default="target/release/lpdrop")
    ap.add_argument("--conversations", type=int, default=8000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--roll-every", default="10s")
    ap.add_argument("--load-seconds", type=float, default=30)
    ap.add_argument("--roll-events", type=int, default=100000)
    ap.add_argument("--load-fraction", type=float, default=0.8)
    ap.add_argument("--probe-rate", type=float, default=200,
                    help="requests/s of the Python probe during (b)")
    ap.add_argument("--probe-threads", type=int, default=8)
    ap.add_argument("--parquet-python", default=sys.executable)
    ap.add_argument("--json", help="also write the summary to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="lpdrop-listen-bench-")
    out, spool = os.path.join(tmp, "out"), os.path.join(tmp, "spool")
    port, mport = free_port(), free_port()
    addr, maddr = f"127.0.0.1:{port}", f"127.0.0.1:{mport}"
    env = dict(os.environ, LP_ACCOUNT_ID=ACCOUNT, LP_WEBHOOK_CLIENT_ID=CLIENT,
               LP_WEBHOOK_CLIENT_SECRET=SECRET, LPDROP_LOG_FORMAT="json")
    log = open(os.path.join(tmp, "listen.log"), "w")
    listener = subprocess.Popen(
        [args.bin, "listen", "--addr", addr, "--metrics-addr", maddr, "--out", out,
         "--spool", spool, "--roll-every", args.roll_every,
         "--roll-events", str(args.roll_events)],
        env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    summary = {"machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()}}
    try:
        line = listener.stdout.readline()
        if "Listening" not in line:
            raise SystemExit(f"listener did not start: {line!r} (log in {tmp})")
        threading.Thread(target=lambda: [None for _ in listener.stdout], daemon=True).start()
        for _ in range(100):
            try:
                if get(f"http://{maddr}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)

        # a) sustained rate with the emulator's sender
        print(f"a) emulator: {args.conversations} conversations, concurrency "
              f"{args.concurrency}, no rate limit ...", file=sys.stderr)
        m0 = metrics(maddr)
        start = time.perf_counter()
        em = subprocess.run(
            [args.bin, "emulator", "--port", "0", "--webhook-url", f"http://{addr}/webhooks",
             "--webhook-conversations", str(args.conversations),
             "--webhook-concurrency", str(args.concurrency)],
            env=dict(os.environ, LPDROP_EMULATOR_WEBHOOK_SECRET=SECRET),
            capture_output=True, text=True)
        wall_a = time.perf_counter() - start
        m1 = metrics(maddr)
        if em.returncode != 0:
            raise SystemExit(f"emulator failed: {em.stderr[-2000:]}")
        sent = json.loads([l for l in em.stdout.splitlines() if l.startswith("{")][-1])
        h = hist_delta(m0, m1, "lpdrop_webhook_ack_duration_seconds")
        rss_a, cpu_a = proc_stats(listener.pid)
        summary["a_sustained"] = {
            "conversations": args.conversations, "concurrency": args.concurrency,
            "sender_wall_s": round(wall_a, 3), "emulator_summary": sent,
            "events_per_s": round(sent["events_sent"] / wall_a),
            "notifications_per_s": round(sent["notifications_acked"] / wall_a),
            "listener_cpu_s": round(cpu_a, 2),
            "server_ack_histogram_ms": {
                "p50": round(hist_quantile(h, 0.5) * 1000, 2),
                "p99": round(hist_quantile(h, 0.99) * 1000, 2),
                "note": "interpolated in lpdrop_webhook_ack_duration_seconds buckets "
                        "(1ms..5s): coarse, server-side only"},
        }

        # b) ack latency at --load-fraction of (a): the emulator carries the load (paced with
        # --webhook-rate, conversations after (a)'s so no body repeats one of (a)), and a
        # low-rate Python probe times its own requests meanwhile, client-side.
        rate_ev = args.load_fraction * sent["events_sent"] / wall_a
        per_conv = sent["events_sent"] / args.conversations
        convs_b = max(1, int(rate_ev * args.load_seconds / per_conv))
        print(f"b) emulator at {rate_ev:.0f} events/s ({convs_b} conversations) + Python probe "
              f"at {args.probe_rate}/s ...", file=sys.stderr)
        time.sleep(2)
        m2 = metrics(maddr)
        t_b0 = time.time()
        start = time.perf_counter()
        em_b = subprocess.Popen(
            [args.bin, "emulator", "--port", "0", "--webhook-url", f"http://{addr}/webhooks",
             "--webhook-conversations", str(convs_b),
             "--webhook-first-index", str(args.conversations),
             "--webhook-concurrency", str(args.concurrency),
             "--webhook-rate", str(round(rate_ev))],
            env=dict(os.environ, LPDROP_EMULATOR_WEBHOOK_SECRET=SECRET),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1)  # let the sender reach its pace
        probe_s = max(1.0, args.load_seconds - 3)
        results, wall_p, n_p, events_p = load(addr, args.probe_rate, probe_s,
                                              args.probe_threads)
        em_out, em_err = em_b.communicate()
        wall_b = time.perf_counter() - start
        t_b1 = time.time()
        m3 = metrics(maddr)
        if em_b.returncode != 0:
            raise SystemExit(f"emulator (b) failed: {em_err[-2000:]}")
        sent_b = json.loads([l for l in em_out.splitlines() if l.startswith("{")][-1])
        events_b = sent_b["events_sent"] + events_p
        lat = sorted(r[0] for r in results)
        lag = sorted(max(0.0, r[1]) for r in results)
        ok = sum(1 for r in results if r[2] == 200)
        h = hist_delta(m2, m3, "lpdrop_webhook_ack_duration_seconds")
        summary["b_ack_latency"] = {
            "method": "client-side: a threaded Python probe (open loop, keep-alive, time from "
                      "send to status) beside the emulator's paced load",
            "load_target_events_per_s": round(rate_ev),
            "load_events_per_s": round(sent_b["events_sent"] / wall_b),
            "load_notifications_per_s": round(sent_b["notifications_acked"] / wall_b),
            "emulator_summary": sent_b,
            "probe_rate": args.probe_rate, "probe_achieved_rate": round(n_p / wall_p),
            "probe_requests": n_p, "probe_ok_200": ok,
            "p50_ms": round(quantile(lat, 0.5) * 1000, 2),
            "p99_ms": round(quantile(lat, 0.99) * 1000, 2),
            "max_ms": round(lat[-1] * 1000, 2),
            "probe_lag_p99_ms": round(quantile(lag, 0.99) * 1000, 2),
            "server_histogram_p50_ms": round(hist_quantile(h, 0.5) * 1000, 2),
            "server_histogram_p99_ms": round(hist_quantile(h, 0.99) * 1000, 2),
        }

        # c) wait for the timed rolls to publish everything, then stop the listener.
        # (lpdrop_webhook_spool_depth cannot tell: it is only updated when a drop is
        # published, not when a notification is spooled.) A roll that starts after the last
        # POST takes every sealed segment; wait for one, at least --roll-every after it.
        def committed(m):
            return m.get(("lpdrop_webhook_drops_total", '{outcome="committed"}'), 0)
        load_end, before = time.time(), committed(m3)
        roll_s = float(re.fullmatch(r"(\d+)s", args.roll_every).group(1)) \
            if re.fullmatch(r"\d+s", args.roll_every) else 10.0
        deadline = load_end + 4 * roll_s + 60
        while time.time() < deadline:
            if committed(metrics(maddr)) >= before + 1 and time.time() > load_end + roll_s + 3:
                break
            time.sleep(0.5)
        sigterm_at = time.time()
        rss, cpu = proc_stats(listener.pid)
        summary["listener"] = {"peak_rss_mib": round(rss), "cpu_s": round(cpu, 2),
                               "drops_total": {k[1]: v for k, v in metrics(maddr).items()
                                               if k[0] == "lpdrop_webhook_drops_total"}}
        listener.send_signal(signal.SIGTERM)
        listener.wait(timeout=120)
    finally:
        if listener.poll() is None:
            listener.kill()
        log.close()

    markers = glob.glob(os.path.join(out, "**", "upload.complete"), recursive=True)
    files = {}
    for mk in markers:
        d = os.path.dirname(mk)
        paths = sorted(glob.glob(os.path.join(d, "parquet", "webhook_events", "*.parquet")))
        if paths:
            files[d] = paths
    r = subprocess.run([args.parquet_python, "-c", READ_PARQUET, json.dumps(files)],
                       capture_output=True, text=True, check=True)
    received = json.loads(r.stdout)
    delays, at_sigterm, publish_s = [], 0, []
    for mk in markers:
        with open(os.path.join(os.path.dirname(mk), "manifest.json")) as f:
            created = f"{json.load(f)['created_at']}".replace("Z", "+00:00")
        from datetime import datetime
        publish_s.append(os.stat(mk).st_mtime - datetime.fromisoformat(created).timestamp())
    publish_s.sort()
    for d, vals in received.items():
        done_ms = os.stat(os.path.join(d, "upload.complete")).st_mtime_ns / 1e6
        delays.extend(done_ms - v for v in vals)
        if done_ms / 1000 > sigterm_at:
            at_sigterm += len(vals)
    delays.sort()
    steady = sorted(x for d, vals in received.items() for x in [
        os.stat(os.path.join(d, "upload.complete")).st_mtime_ns / 1e6 - v
        for v in vals if t_b0 * 1000 <= v <= t_b1 * 1000])
    # The emulator repeats some chat-state notifications byte for byte (ChatStateEvent has
    # no timestamp); webhook_events keeps one row per distinct body, so rows can be a little
    # under the events acknowledged.
    expected = sent["events_sent"] + events_b
    summary["c_receive_to_drop"] = {
        "roll_every": args.roll_every, "roll_events": args.roll_events,
        "drops": len(markers),
        "drops_with_events": len(files), "rows": len(delays),
        "events_acked": expected, "rows_in_drop_at_sigterm": at_sigterm,
        "p50_s": round(quantile(delays, 0.5) / 1000, 2),
        "p99_s": round(quantile(delays, 0.99) / 1000, 2),
        "max_s": round(delays[-1] / 1000, 2),
        "min_s": round(delays[0] / 1000, 2),
        "publish_s_per_drop": {"median": round(quantile(publish_s, 0.5), 2),
                               "max": round(publish_s[-1], 2),
                               "note": "upload.complete mtime - manifest created_at"},
        "steady_b": {"rows": len(steady),
                     "p50_s": round(quantile(steady, 0.5) / 1000, 2),
                     "p99_s": round(quantile(steady, 0.99) / 1000, 2),
                     "max_s": round(steady[-1] / 1000, 2)},
    }
    summary["machine"]["loadavg_after"] = os.getloadavg()
    if args.keep:
        summary["tmp"] = tmp
    else:
        shutil.rmtree(tmp, ignore_errors=True)

    a, b, c = summary["a_sustained"], summary["b_ack_latency"], summary["c_receive_to_drop"]
    rows = [
        ("a) events/s (emulator, concurrency %d)" % a["concurrency"], a["events_per_s"]),
        ("a) notifications/s acked", a["notifications_per_s"]),
        ("a) sender wall time, s", a["sender_wall_s"]),
        ("a) server ack p50 / p99, ms (histogram)",
         f"{a['server_ack_histogram_ms']['p50']} / {a['server_ack_histogram_ms']['p99']}"),
        ("b) load: events/s target / achieved",
         f"{b['load_target_events_per_s']} / {b['load_events_per_s']}"),
        ("b) probe ack p50 / p99 / max, ms (client-side)",
         f"{b['p50_ms']} / {b['p99_ms']} / {b['max_ms']}"),
        ("b) probe requests (200) at req/s",
         f"{b['probe_requests']} ({b['probe_ok_200']}) at {b['probe_achieved_rate']}"),
        ("b) server ack p50 / p99, ms (histogram)",
         f"{b['server_histogram_p50_ms']} / {b['server_histogram_p99_ms']}"),
        (f"c) received -> drop committed p50 / p99 / max, s (roll {c['roll_every']})",
         f"{c['p50_s']} / {c['p99_s']} / {c['max_s']}"),
        ("c) same, rows received during (b) only, s",
         f"{c['steady_b']['p50_s']} / {c['steady_b']['p99_s']} / {c['steady_b']['max_s']}"),
        ("c) publishing one drop (created -> committed), median / max, s",
         f"{c['publish_s_per_drop']['median']} / {c['publish_s_per_drop']['max']}"),
        ("c) drops / rows / events acked", f"{c['drops']} / {c['rows']} / {c['events_acked']}"),
        ("listener peak RSS MiB / CPU s", f"{summary['listener']['peak_rss_mib']} / "
                                          f"{summary['listener']['cpu_s']}"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    text = json.dumps(summary)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
