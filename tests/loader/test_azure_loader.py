"""End-to-end: drops published by the real lpdrop binary into Azurite (the Azure Storage
emulator, blob and queue services), Event Grid's BlobCreated events are written to a Storage
Queue the way Event Grid writes them, and the reference loader (examples/azure-loader/loader.py)
loads the drops into DuckDB.

Run: .ci/venv/bin/python -m pytest -q tests/loader/test_azure_loader.py

Azurite and its Node 22 come from tests/azurite.sh (installed into .ci/azurite when missing); the
binary from LPDROP_BIN (default target/debug/lpdrop). Neither is ever skipped: a missing one
fails the test. Azurite has no Event Grid, so the test writes the events itself.

Each drop is published by `lpdrop demo --out az://CONTAINER[/PREFIX]` itself, with Azurite's
connection string in AZURE_STORAGE_CONNECTION_STRING: the blobs, manifest and marker the loader
reads are the ones the real store code wrote.
"""

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

REPO = Path(__file__).resolve().parents[2]
LOADER = REPO / "examples" / "azure-loader" / "loader.py"
LPDROP = Path(os.environ.get("LPDROP_BIN", REPO / "target" / "debug" / "lpdrop"))
# Azurite's one account and its documented key (not a secret: the same in every Azurite).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "thrive-air-drops"
PREFIX = "thrive-air-folder"
QUEUE = "lpdrop-drops"
TOPIC = (f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/lpdrop/providers/"
         f"Microsoft.Storage/storageAccounts/{ACCOUNT}")
LISTENING = re.compile(r"Azurite (Blob|Queue) service is successfully listening at http://127\.0\.0\.1:(\d+)")


@pytest.fixture
def azurite(tmp_path):
    """Azurite (blob + queue) on ports it picks itself; yields its connection string."""
    setup = subprocess.run(["bash", str(REPO / "tests" / "azurite.sh")], capture_output=True,
                           text=True, timeout=900)
    if setup.returncode != 0:
        pytest.fail(f"tests/azurite.sh failed:\n{setup.stdout}\n{setup.stderr}", pytrace=False)
    node, azurite_js = setup.stdout.split()
    log_path = tmp_path / "azurite.log"
    log = open(log_path, "wb")
    # Port 0 everywhere: Azurite binds free ports and prints them, so there is no probe-then-bind
    # race. The table service cannot be turned off in this entry point; it gets a port 0 too.
    proc = subprocess.Popen([node, azurite_js, "--silent", "--inMemoryPersistence", "--disableTelemetry",
                             "--blobHost", "127.0.0.1", "--blobPort", "0",
                             "--queueHost", "127.0.0.1", "--queuePort", "0",
                             "--tableHost", "127.0.0.1", "--tablePort", "0",
                             "--skipApiVersionCheck", "--loose"],
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        ports = {}
        deadline = time.monotonic() + 60
        while len(ports) < 2 and time.monotonic() < deadline and proc.poll() is None:
            ports = dict(LISTENING.findall(log_path.read_text(errors="replace")))
            time.sleep(0.1)
        if len(ports) < 2:
            pytest.fail(f"Azurite ({azurite_js}) did not start:\n{log_path.read_text(errors='replace')}",
                        pytrace=False)
        yield (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
               f"BlobEndpoint=http://127.0.0.1:{ports['Blob']}/{ACCOUNT};"
               f"QueueEndpoint=http://127.0.0.1:{ports['Queue']}/{ACCOUNT};")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def child_env(conn):
    """Environment for the loader: only this Azurite, never a real account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env["AZURE_STORAGE_CONNECTION_STRING"] = conn
    return env


def publish_drop(conn, container, prefix=None):
    """Runs `lpdrop demo --out az://CONTAINER[/PREFIX]` against this Azurite: the real binary
    writes every blob, manifest and marker last. Returns the drop's manifest, read back."""
    if not LPDROP.exists():
        pytest.fail(f"{LPDROP} is missing: run `cargo build -p lpdrop` or set LPDROP_BIN", pytrace=False)
    dest = f"az://{container.container_name}" + (f"/{prefix}" if prefix else "")
    out = subprocess.run([str(LPDROP), "demo", "--per-day", "50", "--out", dest],
                         env=child_env(conn), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"lpdrop failed:\n{out.stdout}\n{out.stderr}"
    where = re.search(r"^\s*location\s+az://([^/\s]+)/(\S+)$", out.stdout, re.M)
    assert where, f"lpdrop named no az:// location:\n{out.stdout}"
    assert where[1] == container.container_name
    manifest = json.loads(container.download_blob(f"{where[2]}/manifest.json").readall())
    assert manifest["root"] == where[2]
    marker = json.loads(container.download_blob(marker_name(manifest)).readall())
    assert marker["drop_id"] == manifest["drop_id"]
    if prefix:
        assert manifest["root"].startswith(f"{prefix}/"), manifest["root"]
    return manifest


def event(container, name, kind="Microsoft.Storage.BlobCreated"):
    """An Event Grid event for one blob, shaped as Event Grid delivers it (Event Grid schema)."""
    blob = container.get_blob_client(name)
    data = {
        "api": "PutBlob",
        "clientRequestId": str(uuid.uuid4()),
        "requestId": str(uuid.uuid4()),
        "contentType": "application/octet-stream",
        "blobType": "BlockBlob",
        "url": blob.url,
        "sequencer": f"{time.time_ns():032x}",
        "storageDiagnostics": {"batchId": str(uuid.uuid4())},
    }
    if kind == "Microsoft.Storage.BlobCreated":
        props = blob.get_blob_properties()
        data.update(eTag=props.etag.strip('"'), contentType=props.content_settings.content_type,
                    contentLength=props.size)
    else:
        data["api"] = "DeleteBlob"
    return {
        "id": str(uuid.uuid4()),
        "topic": TOPIC,
        "subject": f"/blobServices/default/containers/{container.container_name}/blobs/{name}",
        "eventType": kind,
        "eventTime": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "data": data,
        "dataVersion": "",
        "metadataVersion": "1",
    }


def as_message(ev):
    """Event Grid writes each event to a Storage Queue as base64-encoded JSON."""
    return base64.b64encode(json.dumps(ev).encode()).decode()


def marker_name(manifest):
    return f"{manifest['root']}/upload.complete"


def run_loader(conn, db, *extra):
    out = subprocess.run([sys.executable, str(LOADER), "--queue", QUEUE, "--db", str(db),
                          "--once", "--poll-seconds", "0", *extra],
                         env=child_env(conn), capture_output=True, text=True, timeout=300)
    print(out.stdout, out.stderr, sep="\n")  # shown by pytest when the test fails
    return out


def rows_by_table(db, drop_id):
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_name <> '_lpdrop_loads'").fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}" WHERE drop_id = ?', [drop_id]).fetchone()[0]
                for t in tables}


def loads(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT drop_id, rows FROM _lpdrop_loads ORDER BY loaded_at").fetchall()


def queue_depth(queue):
    # Azure counts hidden (in-flight) messages too.
    return queue.get_queue_properties().approximate_message_count


def expected_rows(manifest):
    return {t["name"]: t["rows"] for t in manifest["tables"]}


def test_drops_are_verified_and_loaded_once(azurite, tmp_path):
    blobs = BlobServiceClient.from_connection_string(azurite)
    queues = QueueServiceClient.from_connection_string(azurite)
    container = blobs.create_container(CONTAINER)
    queue = queues.create_queue(QUEUE)
    db = tmp_path / "warehouse.duckdb"

    # 1. Two drops, one at the container's root and one under a prefix. Around their marker
    #    events: a BlobCreated for a parquet file and a BlobDeleted, which are skipped, and the
    #    first marker's event again, as plain JSON in a list: the drop is loaded once.
    a = publish_drop(azurite, container)
    b = publish_drop(azurite, container, prefix=PREFIX)
    parquet_a = a["tables"][0]["files"][0]["key"]
    event_a = event(container, marker_name(a))
    queue.send_message(as_message(event_a))
    queue.send_message(as_message(event(container, parquet_a)))
    queue.send_message(as_message(event(container, marker_name(b), "Microsoft.Storage.BlobDeleted")))
    queue.send_message(json.dumps([event_a]))
    queue.send_message(as_message(event(container, marker_name(b))))
    out = run_loader(azurite, db)
    assert out.returncode == 0
    assert out.stderr.count(f"LOADED drop {a['drop_id']}") == 1
    assert f"LOADED drop {b['drop_id']} from {CONTAINER}/{PREFIX}/" in out.stderr
    assert out.stderr.count(f"drop {a['drop_id']} already loaded") == 1
    assert f"ignoring {CONTAINER}/{parquet_a}: not a drop marker" in out.stderr
    assert "skipping Microsoft.Storage.BlobDeleted event" in out.stderr
    assert rows_by_table(db, a["drop_id"]) == expected_rows(a)
    assert rows_by_table(db, b["drop_id"]) == expected_rows(b)
    assert sorted(loads(db)) == sorted([(a["drop_id"], a["totals"]["rows"]),
                                        (b["drop_id"], b["totals"]["rows"])])
    assert queue_depth(queue) == 0, "every message is deleted: loaded, duplicate or skipped"

    # 2. A drop whose listed parquet file was overwritten (same size, one byte changed), and one
    #    with a listed file deleted, are refused: nothing from them is loaded, and their messages
    #    stay on the queue for a retry.
    c = publish_drop(azurite, container, prefix=PREFIX)
    victim = next(t for t in c["tables"] if t["name"] == "messages")["files"][0]
    data = bytearray(container.download_blob(victim["key"]).readall())
    data[len(data) // 2] ^= 0xFF
    container.upload_blob(victim["key"], bytes(data), overwrite=True)
    d = publish_drop(azurite, container)
    gone = d["tables"][-1]["files"][0]
    container.delete_blob(gone["key"])
    refused = {c["drop_id"]: as_message(event(container, marker_name(c))),
               d["drop_id"]: as_message(event(container, marker_name(d)))}
    for message in refused.values():
        queue.send_message(message)
    retry = ["--visibility-timeout", "1", "--max-dequeues", "2"]
    out = run_loader(azurite, db, *retry)
    assert out.returncode == 1
    assert f"REFUSED drop {c['drop_id']}" in out.stderr
    assert f"{victim['path']} has SHA-256" in out.stderr
    assert f"REFUSED drop {d['drop_id']}" in out.stderr
    assert f"{gone['path']} is listed in the manifest but missing" in out.stderr
    assert "2 message(s) could not be loaded: 0 moved to the poison queue, 2 stay on the queue" in out.stderr
    assert queue_depth(queue) == 2, "the refused drops' messages are not deleted"

    # 3. Delivered again after the visibility timeout, and refused again: after --max-dequeues
    #    deliveries they move to the poison queue, verbatim.
    time.sleep(1.5)
    out = run_loader(azurite, db, *retry)
    assert out.returncode == 1
    assert out.stderr.count(f"REFUSED drop {c['drop_id']}") == 1
    assert out.stderr.count(f"moved to the poison queue {QUEUE}-poison") == 2
    assert "2 message(s) could not be loaded: 2 moved to the poison queue, 0 stay on the queue" in out.stderr
    assert queue_depth(queue) == 0
    poison = queues.get_queue_client(f"{QUEUE}-poison")
    poisoned = poison.peek_messages(max_messages=32)
    assert sorted(m.content for m in poisoned) == sorted(refused.values())
    assert all(m.expires_on.year == 9999 for m in poisoned), "poisoned messages never expire"
    for drop in (c, d):
        assert set(rows_by_table(db, drop["drop_id"]).values()) == {0}, "nothing loaded from it"
    assert rows_by_table(db, a["drop_id"]) == expected_rows(a)
    assert rows_by_table(db, b["drop_id"]) == expected_rows(b)
    assert sorted(drop for drop, _ in loads(db)) == sorted([a["drop_id"], b["drop_id"]])


def load_loader_module():
    spec = importlib.util.spec_from_file_location("lpdrop_azure_loader", LOADER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grid_event(name, kind="Microsoft.Storage.BlobCreated", container=CONTAINER, topic=TOPIC):
    return {"id": "1", "topic": topic, "eventType": kind, "dataVersion": "", "metadataVersion": "1",
            "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
            "eventTime": "2026-11-21T09:30:05.1234567Z",
            "data": {"api": "PutBlob", "url": f"https://{ACCOUNT}.blob.core.windows.net/{container}/{name}"}}


def test_event_messages_are_decoded_and_filtered():
    loader = load_loader_module()
    marker = f"{PREFIX}/2026/11/21/09/2026-11-21-09-30-05-x/upload.complete"
    ev = grid_event(marker)
    found = [(CONTAINER, marker)]
    # Base64 (what Event Grid writes), plain JSON, a list of one, bytes.
    assert loader.marker_blobs(as_message(ev), ACCOUNT) == found
    assert loader.marker_blobs(json.dumps(ev), ACCOUNT) == found
    assert loader.marker_blobs(json.dumps([ev]), ACCOUNT) == found
    assert loader.marker_blobs(as_message([ev]).encode(), ACCOUNT) == found
    # The CloudEvents 1.0 schema: `type` and `source`.
    cloud = {"specversion": "1.0", "type": ev["eventType"], "source": TOPIC, "subject": ev["subject"],
             "id": "1", "time": ev["eventTime"], "data": ev["data"]}
    assert loader.marker_blobs(as_message(cloud), ACCOUNT) == found
    # A blob name with spaces and no prefix: the subject is not URL-encoded.
    assert loader.marker_blobs(json.dumps(grid_event("my folder/d/upload.complete")), ACCOUNT) == \
        [(CONTAINER, "my folder/d/upload.complete")]
    # Not markers, not creations, not events.
    assert loader.marker_blobs(as_message(grid_event(marker.replace(loader.MARKER, "manifest.json")))) == []
    assert loader.marker_blobs(as_message(grid_event(marker + ".tmp"))) == []
    assert loader.marker_blobs(as_message(grid_event(marker, "Microsoft.Storage.BlobDeleted"))) == []
    assert loader.marker_blobs(as_message({"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                                           "subject": "", "data": {}})) == []
    assert loader.marker_blobs("not json") == []
    assert loader.marker_blobs(base64.b64encode(b"not json either").decode()) == []
    # Readable, but wrong: kept (and so poisoned in the end) rather than silently deleted.
    with pytest.raises(ValueError, match="storage account"):
        loader.marker_blobs(as_message(grid_event(marker, topic=TOPIC.replace(ACCOUNT, "another"))), ACCOUNT)
    with pytest.raises(ValueError, match="unexpected subject"):
        loader.marker_blobs(json.dumps(dict(ev, subject=f"/containers/{CONTAINER}/{marker}")))
