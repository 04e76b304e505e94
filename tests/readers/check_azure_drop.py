#!/usr/bin/env python3
"""Read a committed lpdrop drop straight from Azure Blob Storage (Azurite) and check it.

Usage: check_azure_drop.py az://container/drop-root   (AZURE_STORAGE_CONNECTION_STRING)

Two readers, each on every table of the manifest, must read exactly the manifest's row count:
DuckDB with its azure extension (loaded from the duckdb-extension-azure package: nothing is
downloaded) and pyarrow's AzureFileSystem. Timestamp columns must read as UTC instants.
"""

import glob
import json
import os
import sys

import duckdb
import duckdb_extension_azure
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from azure.storage.blob import BlobServiceClient


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def settings(connection):
    pairs = dict(p.split("=", 1) for p in connection.split(";") if "=" in p)
    return pairs["AccountName"], pairs["AccountKey"], pairs["BlobEndpoint"]


def main():
    if len(sys.argv) != 2 or not sys.argv[1].startswith("az://"):
        fail(__doc__)
    container, root = sys.argv[1][len("az://"):].rstrip("/").split("/", 1)
    connection = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    blobs = BlobServiceClient.from_connection_string(connection).get_container_client(container)
    blobs.get_blob_client(f"{root}/upload.complete").get_blob_properties()
    manifest = json.loads(blobs.download_blob(f"{root}/manifest.json").readall())

    ext = glob.glob(os.path.join(os.path.dirname(duckdb_extension_azure.__file__), "extensions", "*", "azure.duckdb_extension"))[0]
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false; SET autoload_known_extensions=false")
    con.execute(f"LOAD '{ext}'")
    con.execute("SET azure_transport_option_type = 'curl'")
    con.execute(f"CREATE SECRET a (TYPE AZURE, CONNECTION_STRING '{connection}')")
    for table in manifest["tables"]:
        name = table["name"]
        src = f"read_parquet('az://{container}/{root}/parquet/{name}/*.parquet')"
        rows = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
        if rows != table["rows"]:
            fail(f"duckdb: {name}: {rows} rows read from Azure, manifest says {table['rows']}")
    types = dict(con.execute(
        f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('az://{container}/{root}/parquet/conversations/*.parquet'))"
    ).fetchall())
    if types.get("start_time") != "TIMESTAMP WITH TIME ZONE":
        fail(f"duckdb: conversations.start_time reads as {types.get('start_time')}")
    print(f"duckdb azure from Azurite: {len(manifest['tables'])} tables match the manifest")

    account, key, endpoint = settings(connection)
    scheme, host = endpoint.split("://", 1)
    # Azurite serves blob requests only; pyarrow asks the DFS endpoint whether the account
    # has a hierarchical namespace, and takes Azurite's answer there as "no".
    authority = host.split("/", 1)[0]
    fs = pafs.AzureFileSystem(
        account_name=account,
        account_key=key,
        blob_storage_authority=authority,
        blob_storage_scheme=scheme,
        dfs_storage_authority=authority,
        dfs_storage_scheme=scheme,
    )
    for table in manifest["tables"]:
        name = table["name"]
        data = ds.dataset(f"{container}/{root}/parquet/{name}", format="parquet", filesystem=fs)
        if data.count_rows() != table["rows"]:
            fail(f"pyarrow: {name}: {data.count_rows()} rows, manifest says {table['rows']}")
    t = ds.dataset(f"{container}/{root}/parquet/conversations", format="parquet", filesystem=fs).schema.field("start_time").type
    if not (pa.types.is_timestamp(t) and t.unit == "ms" and t.tz == "UTC"):
        fail(f"pyarrow: conversations.start_time is {t}")
    print(f"pyarrow AzureFileSystem from Azurite: {len(manifest['tables'])} tables match the manifest")


if __name__ == "__main__":
    main()
