#!/usr/bin/env python3
"""lpdrop benchmarks, measured side by side in one run, written to benches/RESULTS.md.

For each size (conversations of the emulator's data set, saved as search pages):
  1. the ceiling: serde_json alone parsing the same bytes on the same number of threads
     (`cargo run --release --example parse_baseline`), and lpdrop's typed lenient decode;
  2. `lpdrop convert` on those pages into a local drop: throughput and peak RSS;
  3. the peer a data engineer would reach for: DuckDB `read_json_objects` + `unnest` +
     `COPY ... TO parquet` for the core tables (fewer tables and columns than lpdrop writes).

Usage: python3 benches/run.py [--sizes 10000,100000] [--threads 2] [--keep]
Needs: cargo, and .ci/venv with duckdb (bash tests/run-all.sh creates it).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "lpdrop")
BASELINE = os.path.join(ROOT, "target", "release", "examples", "parse_baseline")


def timed(cmd, **kw):
    """Runs a command; returns (seconds, peak RSS in MiB of that child, stdout)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out_chunks = []
    # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux).
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.monotonic() - start
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} failed ({code}):\n{out}\n{err}")
    return secs, usage.ru_maxrss / 1024.0, out


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


DUCKDB_SPLIT = """
SET threads = {threads};
CREATE TEMP TABLE recs AS
  SELECT unnest(json_extract(json, '$.conversationHistoryRecords[*]')) AS r
  FROM read_json_objects('{pages}/*.json', maximum_object_size = 1073741824);
COPY (SELECT r->>'$.info.conversationId' AS conversation_id,
             to_timestamp((r->>'$.info.startTimeL')::BIGINT / 1000) AS start_time,
             r->>'$.info.status' AS status, (r->>'$.info.mcs')::BIGINT AS mcs,
             r->>'$.info.latestSkillName' AS latest_skill_name, r->>'$.info.latestAgentId' AS latest_agent_id
      FROM recs) TO '{out}/conversations.parquet' (FORMAT parquet, COMPRESSION snappy);
COPY (SELECT r->>'$.info.conversationId' AS conversation_id, m.value->>'messageId' AS message_id,
             (m.value->>'seq')::BIGINT AS seq, m.value->>'sentBy' AS sent_by, m.value->>'type' AS content_type,
             to_timestamp((m.value->>'timeL')::BIGINT / 1000) AS sent_time,
             m.value->>'$.messageData.msg.text' AS text, m.value->>'$.messageData.richContent.content' AS rich_content_json
      FROM recs, json_each(r->'$.messageRecords') m) TO '{out}/messages.parquet' (FORMAT parquet, COMPRESSION snappy);
COPY (SELECT r->>'$.info.conversationId' AS conversation_id, p.value->>'agentId' AS agent_id,
             p.value->>'agentLoginName' AS agent_login_name, p.value->>'role' AS role,
             to_timestamp((p.value->>'timeL')::BIGINT / 1000) AS added_time
      FROM recs, json_each(r->'$.agentParticipants') p) TO '{out}/agent_participants.parquet' (FORMAT parquet, COMPRESSION snappy);
COPY (SELECT r->>'$.info.conversationId' AS conversation_id, p.value->>'participantId' AS participant_id,
             p.value->>'firstName' AS first_name, p.value->>'lastName' AS last_name
      FROM recs, json_each(r->'$.consumerParticipants') p) TO '{out}/consumer_participants.parquet' (FORMAT parquet, COMPRESSION snappy);
COPY (SELECT r->>'$.info.conversationId' AS conversation_id, t.value->>'reason' AS reason,
             t.value->>'targetSkillId' AS target_skill_id, to_timestamp((t.value->>'timeL')::BIGINT / 1000) AS transfer_time
      FROM recs, json_each(r->'$.transfers') t) TO '{out}/transfers.parquet' (FORMAT parquet, COMPRESSION snappy);
COPY (SELECT r->>'$.info.conversationId' AS conversation_id, s.value->>'messageId' AS message_id,
             (s.value->>'mcs')::BIGINT AS mcs, (s.value->>'messageRawScore')::BIGINT AS message_raw_score
      FROM recs, json_each(r->'$.messageScores') s) TO '{out}/message_scores.parquet' (FORMAT parquet, COMPRESSION snappy);
COPY (SELECT r->>'$.info.conversationId' AS conversation_id, s.value->>'messageId' AS message_id,
             s.value->>'messageDeliveryStatus' AS status, s.value->>'participantType' AS participant_type
      FROM recs, json_each(r->'$.messageStatuses') s) TO '{out}/message_statuses.parquet' (FORMAT parquet, COMPRESSION snappy);
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--venv", default=os.path.join(ROOT, ".ci", "venv"))
    ap.add_argument("--out", default=os.path.join(ROOT, "benches", "RESULTS.md"))
    ap.add_argument("--keep", action="store_true", help="keep the generated pages and drops")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    python = os.path.join(args.venv, "bin", "python")

    print("building release binaries ...", flush=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "lpdrop", "--example", "parse_baseline"],
                   cwd=ROOT, check=True)
    scratch = tempfile.mkdtemp(prefix="lpdrop-bench-")
    rows = []
    try:
        for n in sizes:
            pages = os.path.join(scratch, f"pages-{n}")
            print(f"[{n}] writing saved pages ...", flush=True)
            dump_s, _, _ = timed([BIN, "emulator", "dump", "--conversations", str(n), "--out", pages])
            input_bytes = dir_bytes(pages)
            mb = input_bytes / 1e6

            print(f"[{n}] serde_json ceiling ...", flush=True)
            _, _, out = timed([BASELINE, pages, str(args.threads)])
            base = {m["name"]: m for m in map(json.loads, out.strip().splitlines())}
            value_s = base["serde_json_value"]["seconds"]
            typed_s = base["typed_decode"]["seconds"]

            print(f"[{n}] lpdrop convert ...", flush=True)
            drop_dir = os.path.join(scratch, f"drop-{n}")
            conv_s, conv_rss, _ = timed([BIN, "convert", "--input", pages, "--out", drop_dir])

            print(f"[{n}] DuckDB split ...", flush=True)
            duck_out = os.path.join(scratch, f"duck-{n}")
            os.makedirs(duck_out)
            sql = DUCKDB_SPLIT.format(pages=pages, out=duck_out, threads=args.threads)
            duck_s, duck_rss, _ = timed([python, "-c", f"import duckdb; duckdb.connect().execute({sql!r})"])

            rows.append(dict(n=n, mb=mb, dump_s=dump_s, value_s=value_s, typed_s=typed_s,
                             conv_s=conv_s, conv_rss=conv_rss, duck_s=duck_s, duck_rss=duck_rss))
            if not args.keep:
                shutil.rmtree(pages)
                shutil.rmtree(drop_dir)
                shutil.rmtree(duck_out)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept {scratch}")

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "# lpdrop benchmark results",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.platform()}",
        f"- threads given to the parsers and DuckDB: {args.threads}",
        f"- command: `python3 benches/run.py --sizes {args.sizes} --threads {args.threads}`",
        "- input: the emulator's synthetic data set saved as MI search pages of 100 conversations"
        " (`lpdrop emulator dump`), every node as a `v=2` all-content request returns it",
        "- ratios are against numbers measured in the same run; machines here are noisy, so compare ratios, not seconds",
        "",
        "| conversations | input MB | serde_json Value parse MB/s (ceiling) | typed decode MB/s | convert MB/s | convert conv/s | convert / ceiling | convert vs DuckDB split | convert peak RSS MiB | DuckDB peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['mb']:.0f} | {r['mb']/r['value_s']:.0f} | {r['mb']/r['typed_s']:.0f} | "
            f"{r['mb']/r['conv_s']:.0f} | {r['n']/r['conv_s']:,.0f} | {r['value_s']/r['conv_s']:.2f} | "
            f"{r['duck_s']/r['conv_s']:.2f}x | {r['conv_rss']:.0f} | {r['duck_rss']:.0f} |"
        )
    lines += [
        "",
        "- *ceiling*: `serde_json::from_slice::<Value>` over the same files on the same threads"
        " (pages already in the page cache); *typed decode* is lpdrop's lenient record decoding alone.",
        "- *convert*: the whole path (read, decode, split into 32 tables, parquet with SNAPPY,"
        " SHA-256, manifest, marker) into a local folder, one process.",
        "- *DuckDB split*: 7 core tables with a handful of columns each (lpdrop writes 32 tables with every field),"
        " so the comparison favours DuckDB.",
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
