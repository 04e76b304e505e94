#!/usr/bin/env python3
"""Reference loader: lpdrop drops announced on an Azure Storage Queue, loaded into DuckDB.

Event Grid sends a `Microsoft.Storage.BlobCreated` event to a Storage Queue when a drop's
`upload.complete` marker is written (system topic on the storage account, subject filter
ending in `/upload.complete`). For each marker this loader:

  1. reads the marker and `manifest.json`, and checks the manifest's SHA-256 against the marker;
  2. downloads every parquet file the manifest lists and checks its size and SHA-256;
  3. appends every table in one DuckDB transaction, recording the drop in `_lpdrop_loads`;
  4. deletes the queue message only after that transaction committed.

A drop that does not match its manifest is refused: nothing is loaded, the message stays on the
queue, is retried after the visibility timeout and, after --max-dequeues deliveries, is moved to
the poison queue (`<queue>-poison`, the Azure Functions convention).

Usage:
  loader.py --queue lpdrop-drops --db lpdrop.duckdb [--once]

Azure settings: AZURE_STORAGE_CONNECTION_STRING (account key or SAS; Azurite), or
--account-url/AZURE_STORAGE_ACCOUNT_URL with azure-identity's DefaultAzureCredential.
"""

import argparse
import base64
import binascii
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time

import duckdb
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

MARKER = "upload.complete"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
# The subject Event Grid gives a blob event: /blobServices/default/containers/<c>/blobs/<name>.
SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<blob>.+)$")
# Table names are written into SQL: accept only what lpdrop produces (snake_case).
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

log = logging.getLogger("lpdrop-loader")


class Refused(Exception):
    """The drop does not match its marker or manifest. Retrying will not fix it."""


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def read_blob(blobs, container, name):
    return blobs.get_blob_client(container, name).download_blob().readall()


def download(blobs, container, name, path):
    """Streams one blob to `path`; returns its size and SHA-256, computed in the same pass."""
    digest = hashlib.sha256()
    size = 0
    stream = blobs.get_blob_client(container, name).download_blob()
    with open(path, "wb") as out:
        for chunk in stream.chunks():
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def decode_message(content):
    """The JSON in a queue message. Event Grid writes base64-encoded JSON; plain JSON is accepted
    too (a message sent by hand, or a queue client with another encode policy)."""
    if isinstance(content, bytes):
        content = content.decode("utf-8")
    text = content.strip()
    if not text.startswith(("{", "[")):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("neither JSON nor base64-encoded JSON") from None
    return json.loads(text)


def marker_blobs(content, account=None):
    """The (container, blob name) of every `upload.complete` created in one queue message.

    The message holds one Event Grid event (Event Grid schema, or CloudEvents 1.0 with `type`),
    or a list of them. Other event types and other blobs are skipped.
    """
    try:
        events = decode_message(content)
    except ValueError as e:
        log.warning("message is not an Event Grid event (%s): deleting it", e)
        return []
    if isinstance(events, dict):
        events = [events]
    found = []
    for event in events:
        kind = event.get("eventType") or event.get("type")
        subject = event.get("subject", "")
        if kind != BLOB_CREATED:
            log.info("skipping %s event for %s", kind, subject or "?")
            continue
        m = SUBJECT.match(subject)
        if not m:
            raise ValueError(f"BlobCreated event with an unexpected subject {subject!r}")
        container, name = m["container"], m["blob"]
        if name.rsplit("/", 1)[-1] != MARKER:
            log.info("ignoring %s/%s: not a drop marker", container, name)
            continue
        # The topic names the storage account the event came from (the `source` in CloudEvents).
        topic = event.get("topic") or event.get("source") or ""
        if account and "/storageAccounts/" in topic:
            named = topic.rsplit("/storageAccounts/", 1)[1].split("/", 1)[0]
            if named.lower() != account.lower():
                raise ValueError(f"event from storage account {named}, this loader reads {account}")
        found.append((container, name))
    return found


def already_loaded(con, drop_id):
    # As text: fetching a TIMESTAMPTZ into Python would need pytz.
    row = con.execute("SELECT CAST(loaded_at AS VARCHAR) FROM _lpdrop_loads WHERE drop_id = ?",
                      [drop_id]).fetchone()
    return row[0] if row else None


def check_drop(blobs, container, marker_name, marker):
    """Reads the manifest and cross-checks it with the marker. Returns the manifest."""
    root = marker_name[: -len(MARKER)].rstrip("/")
    drop_id = marker["drop_id"]
    if marker["manifest_key"] != f"{root}/manifest.json":
        raise Refused(f"marker names manifest {marker['manifest_key']}, expected {root}/manifest.json")
    try:
        manifest_bytes = read_blob(blobs, container, marker["manifest_key"])
    except ResourceNotFoundError:
        raise Refused("manifest.json is named by the marker but missing") from None
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


def fetch_files(blobs, container, manifest, workdir):
    """Downloads every listed file and checks it. Returns {table name: [local paths]}.

    DuckDB then reads these verified local copies, never the storage account itself, so what is
    loaded is exactly what was checked, even if a blob is overwritten meanwhile.
    """
    local = {}
    for table in manifest["tables"]:
        paths = local.setdefault(table["name"], [])
        os.makedirs(os.path.join(workdir, table["name"]), exist_ok=True)
        for i, f in enumerate(table["files"]):
            path = os.path.join(workdir, table["name"], f"{i:05d}.parquet")
            try:
                size, digest = download(blobs, container, f["key"], path)
            except ResourceNotFoundError:
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


def handle(blobs, con, content, workdir, account=None):
    """Processes one message. True when it can be deleted, False to leave it for a retry."""
    try:
        found = marker_blobs(content, account)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # An event we cannot read: keep it, so that it ends in the poison queue.
        log.error("FAILED to read an Event Grid event (%s: %s); the message stays on the queue",
                  type(e).__name__, e)
        return False
    ok = True
    for container, name in found:
        where = f"{container}/{name[: -len(MARKER)].rstrip('/')}"
        drop_id = "?"
        try:
            marker = json.loads(read_blob(blobs, container, name))
            drop_id = marker["drop_id"]
            when = already_loaded(con, drop_id)
            if when:
                # Event Grid and Storage Queues deliver at least once.
                log.info("drop %s already loaded at %s: duplicate event, skipping", drop_id, when)
                continue
            manifest = check_drop(blobs, container, name, marker)
            with tempfile.TemporaryDirectory(prefix="lpdrop-", dir=workdir) as tmp:
                local = fetch_files(blobs, container, manifest, tmp)
                rows = load(con, drop_id, manifest, local)
            if rows is None:
                log.info("drop %s was loaded meanwhile: duplicate event, skipping", drop_id)
                continue
            log.info("LOADED drop %s from %s: %d tables, %d rows",
                     drop_id, where, len(manifest["tables"]), rows)
        except Refused as e:
            log.error("REFUSED drop %s at %s: %s. Nothing loaded; the message stays on the queue "
                      "(retried, then moved to the poison queue)", drop_id, where, e)
            ok = False
        except Exception as e:  # storage or DuckDB trouble: may be transient, so retry too
            log.error("FAILED drop %s at %s: %s: %s. Nothing loaded; the message stays on the queue",
                      drop_id, where, type(e).__name__, e)
            ok = False
    return ok


def move_to_poison(poison, content):
    """Copies a message to the poison queue, creating the queue on first use (which needs the
    right to create queues; with a poison queue created in advance, sending is enough)."""
    try:
        poison.send_message(content, time_to_live=-1)
    except ResourceNotFoundError:
        try:
            poison.create_queue()
        except ResourceExistsError:
            pass  # another loader created it meanwhile
        poison.send_message(content, time_to_live=-1)


def service_clients(args):
    """Blob and queue service clients for one storage account."""
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        return (BlobServiceClient.from_connection_string(conn),
                QueueServiceClient.from_connection_string(conn))
    if not args.account_url:
        sys.exit("set AZURE_STORAGE_CONNECTION_STRING, or --account-url (AZURE_STORAGE_ACCOUNT_URL) "
                 "with azure-identity installed")
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        sys.exit("--account-url needs azure-identity (pip install azure-identity)")
    # https://<account>.blob.core.windows.net -> https://<account>.queue.core.windows.net
    blob_url = args.account_url.rstrip("/")
    queue_url = blob_url.replace(".blob.", ".queue.", 1)
    credential = DefaultAzureCredential()
    return BlobServiceClient(blob_url, credential=credential), QueueServiceClient(queue_url, credential=credential)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--queue", default=os.environ.get("LPDROP_QUEUE_NAME"),
                   help="Storage Queue receiving the BlobCreated events [env LPDROP_QUEUE_NAME]")
    p.add_argument("--poison-queue", default=os.environ.get("LPDROP_POISON_QUEUE_NAME"),
                   help="where messages go after --max-dequeues failed deliveries "
                        "[env LPDROP_POISON_QUEUE_NAME, default <queue>-poison]")
    p.add_argument("--max-dequeues", type=int, default=5,
                   help="deliveries before a failing message is moved to the poison queue (default 5)")
    p.add_argument("--visibility-timeout", type=int, default=900,
                   help="seconds a received message stays hidden while its drop loads (default 900)")
    p.add_argument("--account-url", default=os.environ.get("AZURE_STORAGE_ACCOUNT_URL"),
                   help="https://<account>.blob.core.windows.net, with DefaultAzureCredential, when "
                        "AZURE_STORAGE_CONNECTION_STRING is not set [env AZURE_STORAGE_ACCOUNT_URL]")
    p.add_argument("--db", default=os.environ.get("LPDROP_DUCKDB_PATH", "lpdrop.duckdb"),
                   help="DuckDB database file [env LPDROP_DUCKDB_PATH, default lpdrop.duckdb]")
    p.add_argument("--once", action="store_true",
                   help="drain the queue until it is empty, then exit (1 if a drop was refused)")
    p.add_argument("--poll-seconds", type=float, default=10,
                   help="pause when the queue is empty (Storage Queues have no long poll; default 10)")
    p.add_argument("--workdir", default=None, help="where downloads are staged (default: system temp)")
    args = p.parse_args(argv)
    if not args.queue:
        p.error("--queue (or LPDROP_QUEUE_NAME) is required")
    poison_name = args.poison_queue or f"{args.queue}-poison"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # not every HTTP request and response

    blobs, queues = service_clients(args)
    queue = queues.get_queue_client(args.queue)
    poison = queues.get_queue_client(poison_name)
    con = duckdb.connect(args.db)
    con.execute("""CREATE TABLE IF NOT EXISTS _lpdrop_loads (
        drop_id VARCHAR PRIMARY KEY, loaded_at TIMESTAMPTZ NOT NULL, rows BIGINT NOT NULL)""")

    left = set()  # with --once: messages this run could not load, left on the queue
    poisoned = 0
    while True:
        try:
            messages = list(queue.receive_messages(max_messages=32, messages_per_page=32,
                                                   visibility_timeout=args.visibility_timeout))
        except Exception as e:
            if args.once:
                raise
            # A long-running worker outlives network blips and throttling.
            log.error("receiving from the queue failed (%s: %s); retrying in 10 s", type(e).__name__, e)
            time.sleep(10)
            continue
        # With --once, stop when the queue is empty, or when it only gives back messages this run
        # already failed (a short visibility timeout would otherwise make the drain endless).
        if args.once and all(m.id in left for m in messages):
            break
        if not messages:
            time.sleep(args.poll_seconds)
            continue
        for m in messages:
            if args.once and m.id in left:
                continue
            if handle(blobs, con, m.content, args.workdir, blobs.account_name):
                # Only now: the load committed, or the message needs no load at all.
                queue.delete_message(m)
                continue
            if m.dequeue_count >= args.max_dequeues:
                # Storage Queues have no dead-letter queue of their own: move it, copy first.
                # It never expires there (time_to_live=-1): someone has to look at it.
                move_to_poison(poison, m.content)
                queue.delete_message(m)
                poisoned += 1
                log.error("message %s failed %d deliveries: moved to the poison queue %s",
                          m.id, m.dequeue_count, poison_name)
            if args.once:
                left.add(m.id)
    con.close()
    if left:
        log.error("%d message(s) could not be loaded: %d moved to the poison queue, %d stay on the queue",
                  len(left), poisoned, len(left) - poisoned)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
