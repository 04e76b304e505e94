#!/usr/bin/env python3
"""Open a committed lpdrop drop with real readers (DuckDB, pyarrow, pyspark) and check it.

Usage: check_drop.py DROP_DIR [--no-spark]

For every table in manifest.json, each reader must:
  - read the table's folder and count exactly the manifest's rows;
  - see every timestamp column as a UTC timestamp (not a string, not an integer);
and every messages.conversation_id (and every other child table's) must exist in
conversations. Exits non-zero with a message on the first failure.
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


def table_dir(drop, name):
    return os.path.join(drop, "parquet", name)


def timestamp_columns(drop, name):
    """Columns the schema file declares as timestamps (schemas/ is the contract)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "schemas", f"{name}.json")) as f:
        schema = json.load(f)
    return [c["name"] for c in schema["columns"] if c["type"] == "timestamp_ms_utc"]


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
        types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {name})").fetchall())
        for col in timestamp_columns(drop, name):
            if types.get(col) != "TIMESTAMP WITH TIME ZONE":
                fail(f"duckdb: {name}.{col} reads as {types.get(col)}, not TIMESTAMP WITH TIME ZONE")
    # Child rows point at conversations that exist.
    for table in manifest["tables"]:
        name = table["name"]
        if name == "conversations":
            continue
        orphans = con.execute(
            f"SELECT count(*) FROM {name} x ANTI JOIN conversations c USING (conversation_id)"
        ).fetchone()[0]
        if orphans:
            fail(f"duckdb: {orphans} {name} rows have a conversation_id missing from conversations")
    # Timestamps are real instants: the window bounds hold for start_time.
    outside, missing = con.execute(
        "SELECT count(*) FILTER (WHERE start_time < ?::TIMESTAMPTZ OR start_time >= ?::TIMESTAMPTZ),"
        " count(*) FILTER (WHERE start_time IS NULL) FROM conversations",
        [manifest["source"]["window_from"], manifest["source"]["window_to"]],
    ).fetchone()
    if outside or missing:
        fail(f"duckdb: {outside} conversations start outside the window, {missing} have no start")
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


def check_spark(drop, manifest):
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession
    from pyspark.sql.types import TimestampType

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("lpdrop-reader-check")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
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
        conv = frames["conversations"].select("conversation_id")
        orphans = frames["messages"].join(conv, "conversation_id", "left_anti").count()
        if orphans:
            fail(f"spark: {orphans} messages have a conversation_id missing from conversations")
        print(f"spark {spark.version}: {len(manifest['tables'])} tables OK")
    finally:
        spark.stop()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        fail(__doc__)
    drop = args[0]
    manifest = load(drop)
    if manifest["totals"]["rows"] == 0:
        fail("the drop is empty: nothing to check")
    check_duckdb(drop, manifest)
    check_pyarrow(drop, manifest)
    if "--no-spark" not in sys.argv:
        check_spark(drop, manifest)
    print("readers: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
