#!/usr/bin/env python3
"""Reference loader: lpdrop drops announced on SQS, loaded into a DuckDB database file.

S3 sends an event to SQS when a drop's `upload.complete` marker is written (bucket notification,
suffix filter `upload.complete`). For each marker this loader:

  1. reads the marker and `manifest.json`, and checks the manifest's SHA-256 against the marker;
  2. downloads every parquet file the manifest lists and checks its size and SHA-256;
  3. appends every table in one DuckDB transaction, recording the drop in `_lpdrop_loads`;
  4. deletes the SQS message only after that transaction committed.

A drop that does not match its manifest is refused: nothing is loaded, the message stays on the
queue, is retried after the visibility timeout and ends in the dead-letter queue.

Usage:
  loader.py --queue-url URL --db lpdrop.duckdb [--once]

AWS settings come from the usual environment: credentials, AWS_REGION, and AWS_ENDPOINT_URL
(moto, LocalStack, MinIO), which botocore reads itself.
"""

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import urllib.parse

import boto3
import duckdb

MARKER = "upload.complete"
# Table names are written into SQL: accept only what lpdrop produces (snake_case).
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

log = logging.getLogger("lpdrop-loader")


class Refused(Exception):
    """The drop does not match its marker or manifest. Retrying will not fix it."""


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def read_object(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def download(s3, bucket, key, path):
    """Streams one object to `path`; returns its size and SHA-256, computed in the same pass."""
    digest = hashlib.sha256()
    size = 0
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with open(path, "wb") as out:
        for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def marker_keys(body):
    """The (bucket, key) of every `upload.complete` created in one SQS message body."""
    try:
        event = json.loads(body)
    except ValueError:
        log.warning("message body is not JSON, not an S3 event: deleting it")
        return []
    # Fan-out through SNS wraps the S3 event in an SNS envelope.
    if event.get("Type") == "Notification" and "Message" in event:
        event = json.loads(event["Message"])
    if "Records" not in event:
        # S3 sends `s3:TestEvent` (no Records) when the notification is configured.
        log.info("skipping message without Records (%s)", event.get("Event", "unknown"))
        return []
    found = []
    for record in event["Records"]:
        if not record.get("eventName", "").startswith("ObjectCreated:"):
            continue
        bucket = record["s3"]["bucket"]["name"]
        # S3 form-urlencodes the key ("a b" -> "a+b"); moto also escapes "/" as "%2F".
        # unquote_plus handles both. The raw string is never a usable key.
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        if key.rsplit("/", 1)[-1] != MARKER:
            log.info("ignoring s3://%s/%s: not a drop marker", bucket, key)
            continue
        found.append((bucket, key))
    return found


def already_loaded(con, drop_id):
    # As text: fetching a TIMESTAMPTZ into Python would need pytz.
    row = con.execute("SELECT CAST(loaded_at AS VARCHAR) FROM _lpdrop_loads WHERE drop_id = ?",
                      [drop_id]).fetchone()
    return row[0] if row else None


def check_drop(s3, bucket, marker_key, marker):
    """Reads the manifest and cross-checks it with the marker. Returns the manifest."""
    root = marker_key[: -len(MARKER)].rstrip("/")
    drop_id = marker["drop_id"]
    if marker["manifest_key"] != f"{root}/manifest.json":
        raise Refused(f"marker names manifest {marker['manifest_key']}, expected {root}/manifest.json")
    manifest_bytes = read_object(s3, bucket, marker["manifest_key"])
    actual = sha256_hex(manifest_bytes)
    if actual != marker["manifest_sha256"]:
        raise Refused(f"manifest.json has SHA-256 {actual}, the marker says {marker['manifest_sha256']}")
    manifest = json.loads(manifest_bytes)
    if manifest["drop_id"] != drop_id or manifest["root"] != root:
        raise Refused(f"manifest is for drop {manifest['drop_id']} at {manifest['root']}")
    listed = []
    for table in manifest["tables"]:
        if not TABLE_NAME.match(table["name"]):
            raise Refused(f"table name {table['name']!r} is not a plain identifier")
        for f in table["files"]:
            # Only files inside this drop's own table folder: a manifest never points elsewhere.
            if not f["key"].startswith(f"{root}/parquet/{table['name']}/"):
                raise Refused(f"{f['key']} is outside the table folder of {table['name']}")
            listed.append(f["key"])
    if sorted(listed) != sorted(marker["files"]):
        raise Refused("the marker's file list differs from the manifest's")
    return manifest


def fetch_files(s3, bucket, manifest, workdir):
    """Downloads every listed file and checks it. Returns {table name: [local paths]}.

    DuckDB then reads these verified local copies, never S3 itself, so what is loaded is
    exactly what was checked, even if an object is overwritten meanwhile.
    """
    local = {}
    for table in manifest["tables"]:
        paths = local.setdefault(table["name"], [])
        os.makedirs(os.path.join(workdir, table["name"]), exist_ok=True)
        for i, f in enumerate(table["files"]):
            path = os.path.join(workdir, table["name"], f"{i:05d}.parquet")
            try:
                size, digest = download(s3, bucket, f["key"], path)
            except s3.exceptions.NoSuchKey:
                raise Refused(f"{f['path']} is listed in the manifest but missing") from None
            if size != f["bytes"]:
                raise Refused(f"{f['path']} has {size} bytes, the manifest says {f['bytes']}")
            if digest != f["sha256"]:
                raise Refused(f"{f['path']} has SHA-256 {digest}, the manifest says {f['sha256']}")
            paths.append(path)
    return local


def load(con, drop_id, manifest, local):
    """Appends every table of the drop and records it, all in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        if already_loaded(con, drop_id):
            con.execute("ROLLBACK")  # another delivery won the race
            return None
        total = 0
        for table in manifest["tables"]:
            paths = local[table["name"]]
            if not paths:
                continue
            name = f'"{table["name"]}"'
            # The first drop creates the table from the parquet schema (every table has a file
            # in every drop, even with no rows, so the schema is always there).
            con.execute(f"CREATE TABLE IF NOT EXISTS {name} AS "
                        "SELECT * FROM read_parquet(?) LIMIT 0", [paths])
            # BY NAME: columns match by name, so a reordered schema cannot shift values into the
            # wrong column, and a new column fails loudly instead of being dropped silently.
            rows = con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM read_parquet(?)",
                               [paths]).fetchone()[0]
            if rows != table["rows"]:
                raise Refused(f"{table['name']}: {rows} rows read, the manifest says {table['rows']}")
            total += rows
        con.execute("INSERT INTO _lpdrop_loads VALUES (?, current_timestamp, ?)", [drop_id, total])
        con.execute("COMMIT")
        return total
    except BaseException:
        con.execute("ROLLBACK")
        raise


def handle(s3, con, body, workdir):
    """Processes one message. True when it can be deleted, False to leave it for a retry."""
    try:
        found = marker_keys(body)
    except (KeyError, TypeError, ValueError) as e:
        # An S3 event we cannot read: keep it, so that it ends in the dead-letter queue.
        log.error("FAILED to read an S3 event (%s: %s); the message stays on the queue",
                  type(e).__name__, e)
        return False
    ok = True
    for bucket, key in found:
        where = f"s3://{bucket}/{key[: -len(MARKER)].rstrip('/')}"
        drop_id = "?"
        try:
            marker = json.loads(read_object(s3, bucket, key))
            drop_id = marker["drop_id"]
            when = already_loaded(con, drop_id)
            if when:
                # At-least-once delivery (and moto's double event for multipart writes).
                log.info("drop %s already loaded at %s: duplicate event, skipping", drop_id, when)
                continue
            manifest = check_drop(s3, bucket, key, marker)
            with tempfile.TemporaryDirectory(prefix="lpdrop-", dir=workdir) as tmp:
                local = fetch_files(s3, bucket, manifest, tmp)
                rows = load(con, drop_id, manifest, local)
            if rows is None:
                log.info("drop %s was loaded meanwhile: duplicate event, skipping", drop_id)
                continue
            log.info("LOADED drop %s from %s: %d tables, %d rows",
                     drop_id, where, len(manifest["tables"]), rows)
        except Refused as e:
            log.error("REFUSED drop %s at %s: %s. Nothing loaded; the message stays on the queue "
                      "(retried, then moved to the dead-letter queue)", drop_id, where, e)
            ok = False
        except Exception as e:  # S3 or DuckDB trouble: may be transient, so retry too
            log.error("FAILED drop %s at %s: %s: %s. Nothing loaded; the message stays on the queue",
                      drop_id, where, type(e).__name__, e)
            ok = False
    return ok


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--queue-url", default=os.environ.get("LPDROP_QUEUE_URL"),
                   help="SQS queue receiving the upload.complete notifications [env LPDROP_QUEUE_URL]")
    p.add_argument("--db", default=os.environ.get("LPDROP_DUCKDB_PATH", "lpdrop.duckdb"),
                   help="DuckDB database file [env LPDROP_DUCKDB_PATH, default lpdrop.duckdb]")
    p.add_argument("--once", action="store_true",
                   help="drain the queue until it is empty, then exit (1 if a drop was refused)")
    p.add_argument("--wait-seconds", type=int, default=20, help="long-poll wait, 0-20 s (default 20)")
    p.add_argument("--workdir", default=None, help="where downloads are staged (default: system temp)")
    args = p.parse_args(argv)
    if not args.queue_url:
        p.error("--queue-url (or LPDROP_QUEUE_URL) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)  # not "Found credentials" per run

    # The region from AWS_REGION when set; the endpoint from AWS_ENDPOINT_URL (read by botocore).
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION"))
    sqs, s3 = session.client("sqs"), session.client("s3")
    con = duckdb.connect(args.db)
    con.execute("""CREATE TABLE IF NOT EXISTS _lpdrop_loads (
        drop_id VARCHAR PRIMARY KEY, loaded_at TIMESTAMPTZ NOT NULL, rows BIGINT NOT NULL)""")

    left = set()  # with --once: messages this run could not load, left on the queue
    while True:
        try:
            reply = sqs.receive_message(QueueUrl=args.queue_url, MaxNumberOfMessages=10,
                                        WaitTimeSeconds=args.wait_seconds)
        except Exception as e:
            if args.once:
                raise
            # A long-running worker outlives network blips and throttling.
            log.error("receiving from the queue failed (%s: %s); retrying in 10 s", type(e).__name__, e)
            time.sleep(10)
            continue
        messages = reply.get("Messages", [])
        # With --once, stop when the queue is empty, or when it only gives back messages this run
        # already failed (a short visibility timeout would otherwise make the drain endless).
        if args.once and all(m["MessageId"] in left for m in messages):
            break
        for m in messages:
            if args.once and m["MessageId"] in left:
                continue
            if handle(s3, con, m["Body"], args.workdir):
                # Only now: the load committed, or the message needs no load at all.
                sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=m["ReceiptHandle"])
            elif args.once:
                left.add(m["MessageId"])
    con.close()
    if left:
        log.error("%d message(s) could not be loaded and stay on the queue", len(left))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
