//! Records that could not be read: kept whole, with the reason, never dropped silently.

use serde::Serialize;

/// One record set aside, written as a line of the drop's quarantine file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedRecord {
    /// What could not be read, naming the field.
    pub reason: String,
    /// Where the record came from: the request window and offset, or the input file.
    pub origin: String,
    /// The record exactly as received (JSON text).
    pub record: String,
}

impl QuarantinedRecord {
    /// One JSON line; the raw record is embedded as a string so that even text that is not
    /// valid JSON survives byte for byte.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("strings serialize")
    }
}
