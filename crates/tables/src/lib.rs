//! The relational model: LivePerson records split into flat tables of Arrow record batches.
//!
//! - [`schema`]: column types and table definitions, the contract with BI users; `schemas/`
//!   in the repository is generated from them (`lpdrop schema --format json`).
//! - [`messaging`]: the Messaging Interactions tables and [`MessagingTables`], which splits a
//!   conversation into rows of every table.
//! - [`buffer`]: typed row buffers turned into `RecordBatch`es with lineage columns.
//! - [`quarantine`]: records that could not be read, kept whole with the reason.
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

pub mod buffer;
pub mod messaging;
pub mod quarantine;
pub mod richtext;
pub mod schema;

pub use buffer::{Lineage, RowWriter, TableBuffer};
pub use messaging::{MESSAGING_TABLES, MessagingTables};
pub use quarantine::QuarantinedRecord;
pub use schema::{Column, ColumnType, LINEAGE, SCHEMA_VERSION, TableDef};

/// Every table lpdrop writes, in drop and manifest order.
pub fn all_tables() -> &'static [&'static TableDef] {
    &MESSAGING_TABLES
}
