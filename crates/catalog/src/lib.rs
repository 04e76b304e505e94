//! Registers committed drops in the AWS Glue Data Catalog, so that Athena queries them with no
//! hand-written statement.
//!
//! One committed drop registers as: the database (created when absent), each table of the
//! drop's source (created when absent, from [`lpdrop_tables::ddl::athena_table`], the same
//! definition `lpdrop schema --format athena` prints), and one partition per table
//! (`drop_name` = the drop folder name) located at the drop's `parquet/<table>/` folder.
//! Everything is idempotent: a partition that exists already counts as registered, so a
//! retried job or a second `catalog sync` registers nothing twice.
//!
//! The catalog never decides whether data is safe: callers register only drops whose
//! `upload.complete` exists, and a failed registration never un-commits a drop.
//!
//! Throttling and 5xx answers are retried by the SDK's standard retry strategy (exponential
//! backoff with jitter, [`ATTEMPTS`] attempts); any other refusal (AccessDenied above all) is
//! reported once, as a [`CatalogError`] naming the action and the database.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_glue::Client;
use aws_sdk_glue::config::retry::RetryConfig;
use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{
    Column, DatabaseInput, PartitionInput, SerDeInfo, StorageDescriptor, TableInput,
};
use lpdrop_drop::{Manifest, S3Settings};
use lpdrop_tables::ddl::{
    AthenaColumn, AthenaTable, PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, PARQUET_SERDE,
    athena_table, drop_name, partition_location,
};
use lpdrop_tables::{ColumnMapping, Source, TableDef, tables_of};

/// Attempts of each Glue request (throttling, 5xx, timeouts are retried with backoff).
pub const ATTEMPTS: u32 = 6;
/// `BatchCreatePartition` takes at most 100 partitions per call.
const PARTITIONS_PER_CALL: usize = 100;

/// Why a registration failed.
#[derive(Debug)]
pub enum CatalogError {
    /// Glue refused the request for lack of permission: retrying will not help.
    AccessDenied { action: String, message: String },
    /// The table exists with a column of another type, or other partition keys: a change the
    /// catalog must not make silently.
    Conflict(String),
    /// The drop cannot be registered as it is (no source, an unknown mapping, a bad root).
    Drop(String),
    /// Anything else Glue answered (after the retries).
    Glue { action: String, message: String },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::AccessDenied { action, message } => write!(
                f,
                "the Glue Data Catalog refused glue:{action} (access denied): {message}; grant \
                 lpdrop's role the Glue actions of deploy/aws/lpdrop-customer.yaml on this \
                 database and its tables"
            ),
            CatalogError::Conflict(m) => write!(f, "catalog conflict: {m}"),
            CatalogError::Drop(m) => write!(f, "{m}"),
            CatalogError::Glue { action, message } => write!(f, "glue:{action} failed: {message}"),
        }
    }
}

impl std::error::Error for CatalogError {}

impl CatalogError {
    pub fn is_access_denied(&self) -> bool {
        matches!(self, CatalogError::AccessDenied { .. })
    }

    fn of<E>(action: &str, e: SdkError<E, aws_sdk_glue::config::http::HttpResponse>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
    {
        let code = e.code().map(str::to_string);
        let message = match (&code, e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            _ => format!("{}", aws_sdk_glue::error::DisplayErrorContext(&e)),
        };
        let denied = matches!(
            code.as_deref(),
            Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation")
        ) || e.raw_response().is_some_and(|r| r.status().as_u16() == 403);
        if denied {
            CatalogError::AccessDenied {
                action: action.to_string(),
                message,
            }
        } else {
            CatalogError::Glue {
                action: action.to_string(),
                message,
            }
        }
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// What one registration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registered {
    pub database_created: bool,
    pub tables_created: Vec<String>,
    /// `table.column` of the columns a column mapping added to existing tables.
    pub columns_added: Vec<String>,
    /// Partitions created now (those that existed already are not counted).
    pub partitions_created: usize,
    /// Partitions that existed already.
    pub partitions_existing: usize,
}

impl Registered {
    /// True when the registration changed nothing in the catalog.
    pub fn unchanged(&self) -> bool {
        !self.database_created
            && self.tables_created.is_empty()
            && self.columns_added.is_empty()
            && self.partitions_created == 0
    }
}

/// One committed drop, as the catalog sees it.
#[derive(Debug, Clone)]
pub struct DropToRegister {
    /// The tables' location: `s3://bucket/prefix/` (the folder above `YYYY/`).
    pub prefix_uri: String,
    /// The drop root's URI, `s3://bucket/prefix/YYYY/MM/DD/HH/<drop>`.
    pub root_uri: String,
    /// The tables of the drop's source, as its column mapping made them.
    pub tables: Vec<&'static TableDef>,
}

impl DropToRegister {
    /// The drop of `manifest`, in `bucket`. A drop written with a column mapping needs that
    /// same mapping (its sha256 is in the manifest): the tables' columns come from it.
    pub fn from_manifest(
        bucket: &str,
        manifest: &Manifest,
        mapping: Option<&ColumnMapping>,
    ) -> Result<Self> {
        let source = source_of_api(&manifest.source.api).ok_or_else(|| {
            CatalogError::Drop(format!(
                "drop {}: unknown source API {:?}",
                manifest.root, manifest.source.api
            ))
        })?;
        let tables = match (&manifest.column_mapping, mapping) {
            (None, _) => tables_of(source).to_vec(),
            (Some(used), Some(m)) if m.summary().sha256 == used.sha256 => m.tables_of(source),
            (Some(used), _) => {
                return Err(CatalogError::Drop(format!(
                    "drop {} was written with the column mapping sha256 {}: pass that same \
                     file as --column-mapping to register it",
                    manifest.root, used.sha256
                )));
            }
        };
        let root = manifest.root.trim_matches('/');
        // The drop root is `<prefix>/YYYY/MM/DD/HH/<drop>`: the prefix is what stands above.
        let segments: Vec<&str> = root.split('/').collect();
        if segments.len() < 5 {
            return Err(CatalogError::Drop(format!(
                "drop root {root:?} is not <prefix>/YYYY/MM/DD/HH/<drop>"
            )));
        }
        let prefix = segments[..segments.len() - 5].join("/");
        let prefix_uri = if prefix.is_empty() {
            format!("s3://{bucket}/")
        } else {
            format!("s3://{bucket}/{prefix}/")
        };
        let root_uri = format!("s3://{bucket}/{root}");
        drop_name(&root_uri).map_err(CatalogError::Drop)?;
        Ok(DropToRegister {
            prefix_uri,
            root_uri,
            tables,
        })
    }
}

/// The source of a manifest's `source.api`.
fn source_of_api(api: &str) -> Option<Source> {
    Source::ALL
        .into_iter()
        .find(|s| lpdrop_pipeline::api_name(*s) == api)
}

/// A Glue database to register drops in.
#[derive(Clone, Debug)]
pub struct Catalog {
    client: Client,
    database: String,
}

/// Checks a Glue database name (Glue: 1-255 chars; Athena: lower case, digits, underscore).
pub fn check_database_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid Glue database name {name:?}: use lower-case letters, digits and _"
        ))
    }
}

impl Catalog {
    /// A Glue client from the same AWS configuration as S3 (chain, region, assumed role with
    /// external id); `AWS_ENDPOINT_URL_GLUE` or `AWS_ENDPOINT_URL` overrides the endpoint.
    pub async fn connect(s3: &S3Settings, database: &str) -> anyhow::Result<Catalog> {
        check_database_name(database).map_err(anyhow::Error::msg)?;
        let endpoint = lpdrop_drop::s3::endpoint_override("GLUE", "the Glue endpoint")
            .map_err(anyhow::Error::msg)?;
        let shared = lpdrop_drop::s3::aws_config(&s3.connect_options()).await;
        let mut config = aws_sdk_glue::config::Builder::from(&shared)
            .retry_config(RetryConfig::standard().with_max_attempts(ATTEMPTS));
        if let Some(e) = endpoint {
            config = config.endpoint_url(e);
        }
        Ok(Catalog {
            client: Client::from_conf(config.build()),
            database: database.to_string(),
        })
    }

    /// A catalog through a client built elsewhere (tests: a client for moto).
    pub fn with_client(client: Client, database: &str) -> Catalog {
        Catalog {
            client,
            database: database.to_string(),
        }
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// Registers one committed drop: database, tables, columns a mapping added, partitions.
    pub async fn register(&self, drop: &DropToRegister) -> Result<Registered> {
        let mut done = Registered {
            database_created: self.ensure_database().await?,
            ..Registered::default()
        };
        let name = drop_name(&drop.root_uri).map_err(CatalogError::Drop)?;
        let mut partitions: Vec<(String, PartitionInput)> = Vec::new();
        for t in &drop.tables {
            let table = athena_table(t);
            match self.ensure_table(&table, &drop.prefix_uri).await? {
                TableState::Created => done.tables_created.push(table.name.clone()),
                TableState::Added(columns) => done
                    .columns_added
                    .extend(columns.into_iter().map(|c| format!("{}.{c}", table.name))),
                TableState::Same => {}
            }
            let location = partition_location(&drop.root_uri, &table.name);
            partitions.push((
                table.name.clone(),
                PartitionInput::builder()
                    .values(name)
                    .storage_descriptor(storage_descriptor(&table, &location))
                    .build(),
            ));
        }
        for (table, partition) in partitions {
            // One table per call (BatchCreatePartition is per table); ≤100 per call.
            let (created, existing) = self.add_partitions(&table, vec![partition]).await?;
            done.partitions_created += created;
            done.partitions_existing += existing;
        }
        Ok(done)
    }

    /// Is the drop registered: does every table have its partition?
    pub async fn is_registered(&self, drop: &DropToRegister) -> Result<bool> {
        let name = drop_name(&drop.root_uri).map_err(CatalogError::Drop)?;
        for t in &drop.tables {
            let got = self
                .client
                .get_partition()
                .database_name(&self.database)
                .table_name(t.name)
                .partition_values(name)
                .send()
                .await;
            match got {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => return Ok(false),
                Err(e) => return Err(CatalogError::of("GetPartition", e)),
            }
        }
        Ok(true)
    }

    /// Creates the database when absent; true when it did.
    async fn ensure_database(&self) -> Result<bool> {
        match self.client.get_database().name(&self.database).send().await {
            Ok(_) => return Ok(false),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(CatalogError::of("GetDatabase", e)),
        }
        let input = DatabaseInput::builder()
            .name(&self.database)
            .description(
                "lpdrop drops (LivePerson conversations as parquet), one partition per drop",
            )
            .build()
            .map_err(|e| CatalogError::Drop(e.to_string()))?;
        match self
            .client
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("AlreadyExistsException") => Ok(false),
            Err(e) => Err(CatalogError::of("CreateDatabase", e)),
        }
    }

    async fn ensure_table(&self, table: &AthenaTable, prefix_uri: &str) -> Result<TableState> {
        let existing = match self
            .client
            .get_table()
            .database_name(&self.database)
            .name(&table.name)
            .send()
            .await
        {
            Ok(out) => out.table,
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(CatalogError::of("GetTable", e)),
        };
        let Some(existing) = existing else {
            let input = table_input(table, prefix_uri, glue_columns(&table.columns)?)?;
            return match self
                .client
                .create_table()
                .database_name(&self.database)
                .table_input(input)
                .send()
                .await
            {
                Ok(_) => Ok(TableState::Created),
                // Another writer created it meanwhile: check it as an existing table.
                Err(e) if e.code() == Some("AlreadyExistsException") => {
                    Box::pin(self.ensure_table(table, prefix_uri)).await
                }
                Err(e) => Err(CatalogError::of("CreateTable", e)),
            };
        };
        let keys: Vec<(String, String)> = existing
            .partition_keys()
            .iter()
            .map(|c| {
                (
                    c.name().to_string(),
                    c.r#type().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let wanted: Vec<(String, String)> = table
            .partition_keys
            .iter()
            .map(|c| (c.name.clone(), c.ty.to_string()))
            .collect();
        if keys != wanted {
            return Err(CatalogError::Conflict(format!(
                "table {}.{} is partitioned by {keys:?}, not by {wanted:?}",
                self.database, table.name
            )));
        }
        let old_columns: Vec<Column> = existing
            .storage_descriptor()
            .map(|sd| sd.columns().to_vec())
            .unwrap_or_default();
        let types: BTreeMap<&str, &str> = old_columns
            .iter()
            .map(|c| (c.name(), c.r#type().unwrap_or_default()))
            .collect();
        let mut added = Vec::new();
        for c in &table.columns {
            match types.get(c.name.as_str()) {
                Some(ty) if ty.eq_ignore_ascii_case(c.ty) => {}
                Some(ty) => {
                    return Err(CatalogError::Conflict(format!(
                        "column {}.{}.{} is {ty} in the catalog but {} in this drop; lpdrop \
                         never changes a column's type: use another database, or a column \
                         mapping that renames the column",
                        self.database, table.name, c.name, c.ty
                    )));
                }
                None => added.push(c.clone()),
            }
        }
        if added.is_empty() {
            return Ok(TableState::Same);
        }
        // The old columns first, unchanged, then the new ones: parquet is read by name, so
        // older partitions (files without the new columns) read them as NULL.
        let mut columns = old_columns.clone();
        columns.extend(glue_columns(&added)?);
        let location = existing
            .storage_descriptor()
            .and_then(|sd| sd.location())
            .unwrap_or(prefix_uri)
            .to_string();
        let input = table_input(table, &location, columns)?;
        self.client
            .update_table()
            .database_name(&self.database)
            .table_input(input)
            .send()
            .await
            .map_err(|e| CatalogError::of("UpdateTable", e))?;
        Ok(TableState::Added(
            added.into_iter().map(|c| c.name).collect(),
        ))
    }

    /// Adds partitions of one table, at most 100 per call; (created, existing).
    async fn add_partitions(
        &self,
        table: &str,
        partitions: Vec<PartitionInput>,
    ) -> Result<(usize, usize)> {
        let (mut created, mut existing) = (0, 0);
        for chunk in partitions.chunks(PARTITIONS_PER_CALL) {
            let out = self
                .client
                .batch_create_partition()
                .database_name(&self.database)
                .table_name(table)
                .set_partition_input_list(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| CatalogError::of("BatchCreatePartition", e))?;
            let mut failed = 0;
            for error in out.errors() {
                failed += 1;
                let detail = error.error_detail();
                let code = detail.and_then(|d| d.error_code()).unwrap_or_default();
                if code == "AlreadyExistsException" {
                    existing += 1;
                    continue;
                }
                let message = detail
                    .and_then(|d| d.error_message())
                    .unwrap_or_default()
                    .to_string();
                let action = "BatchCreatePartition".to_string();
                let message = format!("{code}: {message} (table {}.{table})", self.database);
                return Err(if code.contains("AccessDenied") {
                    CatalogError::AccessDenied { action, message }
                } else {
                    CatalogError::Glue { action, message }
                });
            }
            created += chunk.len() - failed;
        }
        Ok((created, existing))
    }
}

enum TableState {
    Created,
    Added(Vec<String>),
    Same,
}

fn is_not_found<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_glue::config::http::HttpResponse>,
) -> bool {
    e.code() == Some("EntityNotFoundException")
}

fn glue_columns(columns: &[AthenaColumn]) -> Result<Vec<Column>> {
    columns
        .iter()
        .map(|c| {
            Column::builder()
                .name(&c.name)
                .r#type(c.ty)
                .comment(&c.comment)
                .build()
                .map_err(|e| CatalogError::Drop(e.to_string()))
        })
        .collect()
}

fn storage_descriptor(table: &AthenaTable, location: &str) -> StorageDescriptor {
    StorageDescriptor::builder()
        .set_columns(glue_columns(&table.columns).ok())
        .location(location)
        .input_format(PARQUET_INPUT_FORMAT)
        .output_format(PARQUET_OUTPUT_FORMAT)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(PARQUET_SERDE)
                .parameters("serialization.format", "1")
                .build(),
        )
        .build()
}

/// The `TableInput` of an Athena table: an EXTERNAL_TABLE of parquet at `location`, with
/// `columns` (the table's own, or those Glue has followed by the ones a mapping added).
fn table_input(table: &AthenaTable, location: &str, columns: Vec<Column>) -> Result<TableInput> {
    let mut sd = storage_descriptor(table, location);
    sd.columns = Some(columns);
    let mut input = TableInput::builder()
        .name(&table.name)
        .description(&table.comment)
        .table_type("EXTERNAL_TABLE")
        .set_partition_keys(Some(glue_columns(&table.partition_keys)?))
        .storage_descriptor(sd)
        .parameters("EXTERNAL", "TRUE");
    for (k, v) in &table.properties {
        input = input.parameters(*k, v);
    }
    input.build().map_err(|e| CatalogError::Drop(e.to_string()))
}

/// Registers the committed drop of `manifest`, in `bucket`, in `database`: a client from the
/// S3 settings (same credentials and role), then [`Catalog::register`]. Call it only once the
/// drop's `upload.complete` exists.
pub async fn register_committed(
    s3: &S3Settings,
    database: &str,
    bucket: &str,
    manifest: &Manifest,
    mapping: Option<&ColumnMapping>,
) -> anyhow::Result<Registered> {
    let catalog = Catalog::connect(s3, database).await?;
    let drop = DropToRegister::from_manifest(bucket, manifest, mapping)?;
    Ok(catalog.register(&drop).await?)
}

/// What [`sync`] found and did under a prefix.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Drop roots (keys) registered now (with `--dry-run`: that would be).
    pub registered: Vec<String>,
    /// Drop roots registered already.
    pub already: Vec<String>,
    /// Drop roots without `upload.complete`: never registered.
    pub uncommitted: Vec<String>,
    /// Drop roots that could not be registered, and why.
    pub failed: Vec<(String, CatalogError)>,
}

/// Registers every committed drop under `prefix` of `store` (an S3 bucket) that is not
/// registered yet; drops without `upload.complete` are skipped. With `dry_run`, only reports
/// what it would register.
pub async fn sync(
    catalog: &Catalog,
    store: &dyn lpdrop_drop::ObjectStore,
    bucket: &str,
    prefix: &str,
    mapping: Option<&ColumnMapping>,
    dry_run: bool,
) -> anyhow::Result<SyncReport> {
    use std::collections::BTreeSet;
    let objects = store.list(prefix).await?;
    let mut roots = BTreeSet::new();
    let mut committed = BTreeSet::new();
    for o in &objects {
        if let Some((root, _)) = lpdrop_drop::drop_root_of(&o.key) {
            if o.key == format!("{root}/{}", lpdrop_drop::MARKER_NAME) {
                committed.insert(root.clone());
            }
            roots.insert(root);
        }
    }
    let mut report = SyncReport::default();
    for root in roots {
        if !committed.contains(&root) {
            report.uncommitted.push(root);
            continue;
        }
        let key = format!("{root}/{}", lpdrop_drop::MANIFEST_NAME);
        let manifest: Manifest = match store.get_bytes(&key).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", store.location(&key)))?,
            None => anyhow::bail!("{} is committed but has no manifest", store.location(&root)),
        };
        let drop = match DropToRegister::from_manifest(bucket, &manifest, mapping) {
            Ok(d) => d,
            Err(e) => {
                report.failed.push((root, e));
                continue;
            }
        };
        let outcome = if dry_run {
            catalog.is_registered(&drop).await.map(|r| !r)
        } else {
            catalog.register(&drop).await.map(|r| !r.unchanged())
        };
        match outcome {
            Ok(true) => report.registered.push(root),
            Ok(false) => report.already.push(root),
            Err(e) if e.is_access_denied() => {
                // The same refusal would answer every other drop: report it once.
                report.failed.push((root, e));
                break;
            }
            Err(e) => report.failed.push((root, e)),
        }
    }
    Ok(report)
}

/// How the registration of one committed drop went. Registration never decides whether data is
/// safe: the drop is committed either way.
pub enum Outcome {
    Registered(Registered),
    /// The drop is committed; its registration is not. `retry` is the command that completes it.
    Pending {
        error: String,
        retry: String,
    },
}

/// The command that completes pending registrations of drops under `dest`.
pub fn retry_command(dest: &lpdrop_drop::Destination, database: &str) -> String {
    let prefix = match dest {
        lpdrop_drop::Destination::S3(l) if l.prefix.as_str().is_empty() => {
            format!("s3://{}", l.bucket)
        }
        lpdrop_drop::Destination::S3(l) => format!("s3://{}/{}", l.bucket, l.prefix.as_str()),
        lpdrop_drop::Destination::Local(p) => p.display().to_string(),
        lpdrop_drop::Destination::Azure(l) => {
            format!("az://{}/{}", l.container, l.prefix.as_str())
        }
    };
    format!("lpdrop catalog sync {prefix} --glue-database {database}")
}

/// Registers a committed drop at `dest` (an S3 destination) and counts the outcome in the
/// metrics; a failure is a pending registration, never an error: every front end (one-shot
/// commands, the worker) treats it the same way.
pub async fn register_or_pending(
    settings: &lpdrop_drop::S3Settings,
    database: &str,
    dest: &lpdrop_drop::Destination,
    manifest: &lpdrop_drop::Manifest,
    mapping: Option<&lpdrop_tables::ColumnMapping>,
) -> Outcome {
    let lpdrop_drop::Destination::S3(location) = dest else {
        return Outcome::Pending {
            error: "the Glue catalog registers drops on S3 only".into(),
            retry: retry_command(dest, database),
        };
    };
    match register_committed(settings, database, &location.bucket, manifest, mapping).await {
        Ok(done) => {
            lpdrop_metrics::CATALOG_REGISTRATIONS.inc(&["registered"]);
            Outcome::Registered(done)
        }
        Err(e) => {
            lpdrop_metrics::CATALOG_REGISTRATIONS.inc(&["pending"]);
            Outcome::Pending {
                error: format!("{e:#}"),
                retry: retry_command(dest, database),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names() {
        assert!(check_database_name("lpdrop_bi").is_ok());
        for bad in ["", "Upper", "with-dash", "a b"] {
            assert!(check_database_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_source_api_is_known() {
        for s in Source::ALL {
            assert_eq!(source_of_api(lpdrop_pipeline::api_name(s)), Some(s));
        }
    }

    #[test]
    fn a_table_input_is_the_printed_ddl() {
        let t = athena_table(tables_of(Source::Messaging)[0]);
        let input = table_input(&t, "s3://b/p/", glue_columns(&t.columns).unwrap()).unwrap();
        let sd = input.storage_descriptor().unwrap();
        assert_eq!(sd.columns().len(), t.columns.len());
        assert_eq!(sd.location(), Some("s3://b/p/"));
        assert_eq!(
            sd.serde_info().unwrap().serialization_library(),
            Some(PARQUET_SERDE)
        );
        assert_eq!(input.partition_keys()[0].name(), "drop_name");
        assert_eq!(input.table_type(), Some("EXTERNAL_TABLE"));
        let printed = lpdrop_tables::ddl::render(lpdrop_tables::ddl::SchemaFormat::Athena, None);
        for c in sd.columns() {
            assert!(
                printed.contains(&format!(
                    "{} {} COMMENT '{}'",
                    c.name(),
                    c.r#type().unwrap(),
                    c.comment().unwrap()
                )),
                "{}",
                c.name()
            );
        }
    }
}
