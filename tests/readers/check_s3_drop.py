#!/usr/bin/env python3
"""Read a committed lpdrop drop straight from S3 with DuckDB (httpfs) and check it.

Usage: check_s3_drop.py s3://bucket/drop-root      (endpoint and keys from AWS_* variables)

Every table of the manifest must read with exactly the manifest's row count, and timestamp
columns must read as TIMESTAMP WITH TIME ZONE. The httpfs extension is loaded from the
duckdb-extension-httpfs package: nothing is downloaded.
"""

import glob
import json
import os
import sys
from urllib.parse import urlparse

import boto3
import duckdb
import duckdb_extension_httpfs


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].startswith("s3://"):
        fail(__doc__)
    uri = sys.argv[1].rstrip("/")
    bucket, root = uri[len("s3://"):].split("/", 1)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.head_object(Bucket=bucket, Key=f"{root}/upload.complete")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{root}/manifest.json")["Body"].read())

    ext = glob.glob(os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions", "*", "httpfs.duckdb_extension"))[0]
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false; SET autoload_known_extensions=false")
    con.execute(f"LOAD '{ext}'")
    host = urlparse(endpoint).netloc
    con.execute(
        f"""CREATE SECRET s (TYPE S3, KEY_ID '{os.environ["AWS_ACCESS_KEY_ID"]}',
            SECRET '{os.environ["AWS_SECRET_ACCESS_KEY"]}', REGION 'us-east-1',
            ENDPOINT '{host}', URL_STYLE 'path', USE_SSL {str(endpoint.startswith('https')).lower()})"""
    )
    for table in manifest["tables"]:
        name = table["name"]
        src = f"read_parquet('s3://{bucket}/{root}/parquet/{name}/*.parquet')"
        rows = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
        if rows != table["rows"]:
            fail(f"{name}: {rows} rows read from S3, manifest says {table['rows']}")
    types = dict(con.execute(
        f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('s3://{bucket}/{root}/parquet/conversations/*.parquet'))"
    ).fetchall())
    if types.get("start_time") != "TIMESTAMP WITH TIME ZONE":
        fail(f"conversations.start_time reads as {types.get('start_time')}")
    print(f"duckdb httpfs from S3: {len(manifest['tables'])} tables, {manifest['totals']['rows']} rows match the manifest")


if __name__ == "__main__":
    main()
