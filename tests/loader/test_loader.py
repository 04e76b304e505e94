"""End-to-end: the real lpdrop binary publishes drops to moto S3, S3 notifies SQS, and the
reference loader (examples/sqs-loader/loader.py) loads them into DuckDB.

Run: .ci/venv/bin/python -m pytest -q tests/loader

moto comes from the venv running the test (or LPDROP_MOTO_SERVER); the binary from LPDROP_BIN
(default target/debug/lpdrop). Neither is ever skipped: a missing one fails the test.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
LOADER = REPO / "examples" / "sqs-loader" / "loader.py"
LPDROP = Path(os.environ.get("LPDROP_BIN", REPO / "target" / "debug" / "lpdrop"))
BUCKET = "vb-thrive-air-s3-bucket"
PREFIX = "thrive-air-folder"


def moto_server_binary():
    if os.environ.get("LPDROP_MOTO_SERVER"):
        return Path(os.environ["LPDROP_MOTO_SERVER"])
    return Path(sys.executable).parent / "moto_server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto(tmp_path):
    """A moto server (S3 + SQS) on a free loopback port, stopped at the end of the test."""
    binary = moto_server_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing: install moto[server] into this venv "
                    "(pip install -r tests/loader/requirements.txt) or set LPDROP_MOTO_SERVER",
                    pytrace=False)
    for _ in range(5):  # another process may take the port between probe and bind
        port = free_port()
        log = open(tmp_path / "moto.log", "wb")
        proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if proc.poll() is None and time.monotonic() < deadline:
            try:
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                log.close()
            return
        proc.kill()
        proc.wait()
        log.close()
    pytest.fail(f"moto ({binary}) did not start on 127.0.0.1; see {tmp_path / 'moto.log'}", pytrace=False)


def child_env(moto_url):
    """Environment for lpdrop and the loader: only this moto, never a real account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=moto_url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    return env


def clients(moto_url):
    kw = dict(endpoint_url=moto_url, region_name="us-east-1",
              aws_access_key_id="test", aws_secret_access_key="test")
    return boto3.client("s3", **kw), boto3.client("sqs", **kw)


def setup_bucket_and_queue(s3, sqs):
    """The customer side, as deploy/aws/lpdrop-customer.yaml sets it up."""
    s3.create_bucket(Bucket=BUCKET)
    dlq = sqs.create_queue(QueueName="lpdrop-drops-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="lpdrop-drops", Attributes={
        "VisibilityTimeout": "120",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
    })["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{
            "QueueArn": arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "upload.complete"}]}},
        }],
    })
    return queue


def markers(s3):
    out = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/"):
        out |= {o["Key"] for o in page.get("Contents", []) if o["Key"].endswith("/upload.complete")}
    return out


def publish_drop(s3, moto_url):
    """Runs `lpdrop demo` into the bucket; returns the new drop's manifest."""
    if not LPDROP.exists():
        pytest.fail(f"{LPDROP} is missing: run `cargo build -p lpdrop` or set LPDROP_BIN", pytrace=False)
    before = markers(s3)
    out = subprocess.run([str(LPDROP), "demo", "--per-day", "300", "--out", f"s3://{BUCKET}/{PREFIX}"],
                         env=child_env(moto_url), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"lpdrop failed:\n{out.stdout}\n{out.stderr}"
    new = markers(s3) - before
    assert len(new) == 1, new
    root = new.pop()[: -len("/upload.complete")]
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"{root}/manifest.json")["Body"].read())


def run_loader(moto_url, queue, db):
    out = subprocess.run([sys.executable, str(LOADER), "--queue-url", queue, "--db", str(db),
                          "--once", "--wait-seconds", "1"],
                         env=child_env(moto_url), capture_output=True, text=True, timeout=300)
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


def queue_depth(sqs, queue):
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def peek_marker_event(sqs, queue):
    """The body of the queued marker event, left on the queue (visibility timeout 0)."""
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  VisibilityTimeout=0).get("Messages", [])
        for m in got:
            if "Records" in json.loads(m["Body"]):
                return m["Body"]
    pytest.fail("no marker event arrived on the queue", pytrace=False)


def expected_rows(manifest):
    return {t["name"]: t["rows"] for t in manifest["tables"]}


def test_drops_are_verified_and_loaded_once(moto, tmp_path):
    s3, sqs = clients(moto)
    queue = setup_bucket_and_queue(s3, sqs)
    db = tmp_path / "warehouse.duckdb"

    # 1. One drop: every table is loaded with the manifest's row count, and the drop is recorded once.
    a = publish_drop(s3, moto)
    event_a = peek_marker_event(sqs, queue)
    out = run_loader(moto, queue, db)
    assert out.returncode == 0
    assert f"LOADED drop {a['drop_id']}" in out.stderr
    assert "s3:TestEvent" in out.stderr, "the configuration's test event is skipped"
    assert rows_by_table(db, a["drop_id"]) == expected_rows(a)
    assert loads(db) == [(a["drop_id"], a["totals"]["rows"])]
    assert queue_depth(sqs, queue) == 0, "the marker event and the test event are deleted"

    # 2. The same event again (verbatim, and with the key unescaped as LocalStack sends it), an
    #    event for a non-marker key, and a second drop: only the second drop is loaded.
    sqs.send_message(QueueUrl=queue, MessageBody=event_a)
    record = json.loads(event_a)["Records"][0]
    marker_key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
    record["s3"]["object"]["key"] = marker_key
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record]}))
    record["s3"]["object"]["key"] = a["tables"][0]["files"][0]["key"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record]}))
    b = publish_drop(s3, moto)
    out = run_loader(moto, queue, db)
    assert out.returncode == 0
    assert out.stderr.count(f"drop {a['drop_id']} already loaded") == 2
    assert "not a drop marker" in out.stderr
    assert f"LOADED drop {b['drop_id']}" in out.stderr
    assert rows_by_table(db, a["drop_id"]) == expected_rows(a), "the first drop is not loaded twice"
    assert rows_by_table(db, b["drop_id"]) == expected_rows(b)
    assert loads(db) == [(a["drop_id"], a["totals"]["rows"]), (b["drop_id"], b["totals"]["rows"])]
    assert queue_depth(sqs, queue) == 0

    # 3. A drop whose listed parquet file was overwritten (same size, one byte changed), and one
    #    with a listed file deleted, are refused: nothing from them is loaded, and their messages
    #    stay on the queue for a retry, then the DLQ.
    c = publish_drop(s3, moto)
    victim = next(t for t in c["tables"] if t["name"] == "messages")["files"][0]
    data = bytearray(s3.get_object(Bucket=BUCKET, Key=victim["key"])["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=victim["key"], Body=bytes(data))
    d = publish_drop(s3, moto)
    gone = d["tables"][-1]["files"][0]
    s3.delete_object(Bucket=BUCKET, Key=gone["key"])
    out = run_loader(moto, queue, db)
    assert out.returncode == 1
    assert f"REFUSED drop {c['drop_id']}" in out.stderr
    assert f"{victim['path']} has SHA-256" in out.stderr
    assert f"REFUSED drop {d['drop_id']}" in out.stderr
    assert f"{gone['path']} is listed in the manifest but missing" in out.stderr
    for refused in (c, d):
        assert set(rows_by_table(db, refused["drop_id"]).values()) == {0}, "nothing loaded from it"
    assert rows_by_table(db, a["drop_id"]) == expected_rows(a)
    assert rows_by_table(db, b["drop_id"]) == expected_rows(b)
    assert [drop for drop, _ in loads(db)] == [a["drop_id"], b["drop_id"]]
    assert queue_depth(sqs, queue) == 2, "the refused drops' messages are not deleted"


def load_loader_module():
    spec = importlib.util.spec_from_file_location("lpdrop_loader", LOADER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def s3_event(key, name="ObjectCreated:Put"):
    return json.dumps({"Records": [{"eventName": name, "s3": {"bucket": {"name": BUCKET},
                                                              "object": {"key": key}}}]})


def test_event_bodies_are_decoded_and_filtered():
    loader = load_loader_module()
    marker = f"{PREFIX}/2026/11/21/09/2026-11-21-09-30-05-x/upload.complete"
    # moto escapes "/" (quote_plus); LocalStack does not; S3 writes a space as "+".
    assert loader.marker_keys(s3_event(urllib.parse.quote_plus(marker))) == [(BUCKET, marker)]
    assert loader.marker_keys(s3_event(marker)) == [(BUCKET, marker)]
    spaced = "my folder/d/upload.complete"
    assert loader.marker_keys(s3_event("my+folder/d/upload.complete")) == [(BUCKET, spaced)]
    # Not markers, not creations, not S3 events.
    assert loader.marker_keys(s3_event(marker.replace("upload.complete", "manifest.json"))) == []
    assert loader.marker_keys(s3_event(marker + ".tmp")) == []
    assert loader.marker_keys(s3_event(marker, "ObjectRemoved:Delete")) == []
    assert loader.marker_keys(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    assert loader.marker_keys("not json") == []
    # Through an SNS topic, the S3 event is wrapped in an envelope.
    sns = json.dumps({"Type": "Notification", "Message": s3_event(marker)})
    assert loader.marker_keys(sns) == [(BUCKET, marker)]
