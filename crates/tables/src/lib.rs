//! The relational model: LivePerson records split into flat tables of Arrow record batches.
//!
//! - [`schema`]: column types and table definitions, the contract with BI users; `schemas/`
//!   in the repository is generated from them (`lpdrop schema --format json`), and so is the
//!   data dictionary ([`schema::data_dictionary`]).
//! - [`messaging`]: the Messaging Interactions tables and [`MessagingTables`], which splits a
//!   conversation into rows of every table; [`sde`]: its typed engagement-attribute tables.
//! - [`chat`]: the Engagement History (legacy chat) tables and [`ChatTables`].
//! - [`dimensions`]: agents, skills and agent groups, and [`DimensionTables`].
//! - [`buffer`]: typed row buffers turned into `RecordBatch`es with lineage columns.
//! - [`quarantine`]: records that could not be read, kept whole with the reason.
//! - [`mapping`]: a user's column mapping: columns added by path, renamed or dropped.
//! - [`webhooks`]: Connector API webhook notifications (`lpdrop listen`) and their row keys.
//!
//! A drop holds the tables of one source: [`MESSAGING_TABLES`], [`CHAT_TABLES`],
//! [`DIMENSION_TABLES`] or [`WEBHOOK_TABLES`]; [`all_tables`] is every table of every source.
//!
//! ```
//! use lpdrop_tables::{Lineage, MessagingTables};
//! let mut tables = MessagingTables::new();
//! let record = r#"{"info":{"conversationId":"c1","startTimeL":1700000000000},
//!                  "messageRecords":[{"messageId":"m1","timeL":1700000001000,
//!                                     "messageData":{"msg":{"text":"Hello"}}}]}"#;
//! tables.append(&serde_json::from_str(record).unwrap());
//! let lineage = Lineage { account_id: "1".into(), drop_id: "d".into(), extracted_at_ms: 0 };
//! let messages = tables.buffers_mut()[1].finish_batch(&lineage);
//! assert_eq!(messages.num_rows(), 1);
//! ```

#[macro_use]
mod macros;

pub mod buffer;
pub mod chat;
pub mod ddl;
pub mod dimensions;
pub mod mapping;
pub mod messaging;
pub mod quarantine;
pub mod richtext;
pub mod schema;
pub mod sde;
pub mod webhooks;

use std::sync::LazyLock;

pub use buffer::{Lineage, RowWriter, TableBuffer};
pub use chat::{CHAT_TABLES, ChatTables};
pub use dimensions::{DIMENSION_TABLES, DimensionTables};
pub use mapping::{ColumnMapping, MappingSummary};
pub use messaging::{MESSAGING_TABLES, MessagingTables};
pub use quarantine::QuarantinedRecord;
pub use schema::{Column, ColumnType, LINEAGE, SCHEMA_VERSION, Source, TableDef};
pub use webhooks::{WEBHOOK_TABLES, WebhookTables};

static ALL_TABLES: LazyLock<Vec<&'static TableDef>> = LazyLock::new(|| {
    MESSAGING_TABLES
        .iter()
        .chain(CHAT_TABLES.iter())
        .chain(DIMENSION_TABLES.iter())
        .chain(WEBHOOK_TABLES.iter())
        .copied()
        .collect()
});

/// Every table lpdrop writes: messaging, chat, dimension, then webhook tables, each list in drop
/// and manifest order. A drop writes only its source's list.
pub fn all_tables() -> &'static [&'static TableDef] {
    &ALL_TABLES
}

/// The tables of one source, in drop and manifest order.
pub fn tables_of(source: Source) -> &'static [&'static TableDef] {
    match source {
        Source::Messaging => &MESSAGING_TABLES,
        Source::Chat => &CHAT_TABLES,
        Source::Dimensions => &DIMENSION_TABLES,
        Source::Webhooks => &WEBHOOK_TABLES,
    }
}
