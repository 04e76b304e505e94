#!/usr/bin/env python3
"""Open a committed lpdrop drop with real readers (DuckDB, pyarrow, pyspark) and check it.

Usage: check_drop.py DROP_DIR [DROP_DIR ...] [--no-spark] [--mapped-schemas=FILE]

Drops of every source are understood (messaging, chat, dimensions, webhooks: manifest
source.api).
For every table in manifest.json, each reader must:
  - read the table's folder and count exactly the manifest's rows;
  - see exactly the declared columns, in order, and every timestamp column as a UTC
    timestamp (not a string, not an integer);
and every child row's key must exist in its parent table (messages.conversation_id in
conversations, chat_lines.engagement_id in chats, agent_skills.agent_id in agents, ...), and
searched records must start inside the drop's window. Exits non-zero with a message on the
first failure.

The declared columns are those of schemas/ (the contract), or, for a drop written with a
column mapping (manifest `column_mapping`), those of --mapped-schemas=FILE: the output of
`lpdrop --column-mapping MAPPING schema --format json`.
"""

import json
import os
import sys


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def load(drop):
    marker = os.path.join(drop, "upload.complete")
    if not os.path.exists(marker):
        fail(f"{drop} has no upload.complete: not a committed drop")
    with open(os.path.join(drop, "manifest.json")) as f:
        manifest = json.load(f)
    return manifest


# Per source (manifest source.api): the parent table, the key its child tables carry, and the
# column that must lie inside the window (None: a snapshot, not windowed).
SOURCES = {
    "messaging_interactions": ("conversations", "conversation_id", "start_time"),
    "engagement_history": ("chats", "engagement_id", "start_time"),
    # Webhook drops: every row names the notification it came from, which the audit table
    # holds; the window is the receive times.
    "webhooks": ("webhook_events", "notification_sha256", "received_at"),
}
# Dimension tables: child -> (parent, key).
DIMENSION_PARENTS = {
    "agent_skills": ("agents", "agent_id"),
    "skill_routing": ("skills", "skill_id"),
}


def parents(manifest):
    """(child, parent, key) for every child table of the drop."""
    names = [t["name"] for t in manifest["tables"]]
    api = manifest["source"]["api"]
    if api in SOURCES:
        parent, key, _ = SOURCES[api]
        return [(n, parent, key) for n in names if n != parent]
    if api == "account_configuration":
        return [(c, p, k) for c, (p, k) in DIMENSION_PARENTS.items() if c in names]
    fail(f"unknown source.api {api!r}")


def table_dir(drop, name):
    return os.path.join(drop, "parquet", name)


MAPPED_SCHEMAS = None  # table name -> definition, from --mapped-schemas


def declared(drop, name):
    """The table's definition: schemas/ (the contract), or the mapped one for a mapped drop."""
    if load(drop).get("column_mapping"):
        if MAPPED_SCHEMAS is None:
            fail(f"{drop} was written with a column mapping: pass --mapped-schemas=FILE")
        return MAPPED_SCHEMAS[name]
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "schemas", f"{name}.json")) as f:
        return json.load(f)


def declared_columns(drop, name):
    return [c["name"] for c in declared(drop, name)["columns"]]


def timestamp_columns(drop, name):
    """Columns the definition declares as timestamps."""
    return [c["name"] for c in declared(drop, name)["columns"] if c["type"] == "timestamp_ms_utc"]


def check_duckdb(drop, manifest):
    import duckdb

    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false; SET autoload_known_extensions=false")
    con.execute("SET TimeZone='UTC'")
    for table in manifest["tables"]:
        name = table["name"]
        glob = os.path.join(table_dir(drop, name), "*.parquet")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{glob}')")
        rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        if rows != table["rows"]:
            fail(f"duckdb: {name} has {rows} rows, manifest says {table['rows']}")
        described = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {name})").fetchall()
        if [c for c, _ in described] != declared_columns(drop, name):
            fail(f"duckdb: {name} has columns {[c for c, _ in described]}, declared {declared_columns(drop, name)}")
        types = dict(described)
        for col in timestamp_columns(drop, name):
            if types.get(col) != "TIMESTAMP WITH TIME ZONE":
                fail(f"duckdb: {name}.{col} reads as {types.get(col)}, not TIMESTAMP WITH TIME ZONE")
    # Child rows point at parents that exist.
    for child, parent, key in parents(manifest):
        orphans = con.execute(
            f"SELECT count(*) FROM {child} x ANTI JOIN {parent} p USING ({key})"
        ).fetchone()[0]
        if orphans:
            fail(f"duckdb: {orphans} {child} rows have a {key} missing from {parent}")
    # Timestamps are real instants: the window bounds hold for the start time.
    if manifest["source"]["api"] in SOURCES:
        parent, _, start = SOURCES[manifest["source"]["api"]]
        outside, missing = con.execute(
            f"SELECT count(*) FILTER (WHERE {start} < ?::TIMESTAMPTZ OR {start} >= ?::TIMESTAMPTZ),"
            f" count(*) FILTER (WHERE {start} IS NULL) FROM {parent}",
            [manifest["source"]["window_from"], manifest["source"]["window_to"]],
        ).fetchone()
        if outside or missing:
            fail(f"duckdb: {outside} {parent} rows start outside the window, {missing} have no start")
    print(f"duckdb {duckdb.__version__}: {len(manifest['tables'])} tables OK")


def check_pyarrow(drop, manifest):
    import pyarrow as pa
    import pyarrow.dataset as ds

    for table in manifest["tables"]:
        name = table["name"]
        data = ds.dataset(table_dir(drop, name), format="parquet")
        if data.count_rows() != table["rows"]:
            fail(f"pyarrow: {name} has {data.count_rows()} rows, manifest says {table['rows']}")
        for col in timestamp_columns(drop, name):
            t = data.schema.field(col).type
            if not (pa.types.is_timestamp(t) and t.unit == "ms" and t.tz == "UTC"):
                fail(f"pyarrow: {name}.{col} is {t}, not timestamp[ms, tz=UTC]")
    print(f"pyarrow {pa.__version__}: {len(manifest['tables'])} tables OK")


def spark_session():
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("lpdrop-reader-check")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def check_spark(spark, drop, manifest):
    from pyspark.sql.types import TimestampType

    frames = {}
    for table in manifest["tables"]:
        name = table["name"]
        df = spark.read.parquet(table_dir(drop, name))
        frames[name] = df
        rows = df.count()
        if rows != table["rows"]:
            fail(f"spark: {name} has {rows} rows, manifest says {table['rows']}")
        types = {f.name: f.dataType for f in df.schema.fields}
        for col in timestamp_columns(drop, name):
            if not isinstance(types.get(col), TimestampType):
                fail(f"spark: {name}.{col} reads as {types.get(col)}, not timestamp")
    for child, parent, key in parents(manifest):
        keys = frames[parent].select(key)
        orphans = frames[child].join(keys, key, "left_anti").count()
        if orphans:
            fail(f"spark: {orphans} {child} rows have a {key} missing from {parent}")
    print(f"spark {spark.version}: {len(manifest['tables'])} tables OK")


def main():
    global MAPPED_SCHEMAS
    for a in sys.argv[1:]:
        if a.startswith("--mapped-schemas="):
            with open(a.split("=", 1)[1]) as f:
                MAPPED_SCHEMAS = {t["table"]: t for t in json.load(f)}
    drops = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not drops:
        fail(__doc__)
    spark = None if "--no-spark" in sys.argv else spark_session()
    try:
        for drop in drops:
            manifest = load(drop)
            print(f"== {drop} ({manifest['source']['api']})")
            if manifest["totals"]["rows"] == 0:
                fail(f"{drop} is empty: nothing to check")
            check_duckdb(drop, manifest)
            check_pyarrow(drop, manifest)
            if spark is not None:
                check_spark(spark, drop, manifest)
    finally:
        if spark is not None:
            spark.stop()
    print(f"readers: {len(drops)} passed, 0 failed")


if __name__ == "__main__":
    main()
