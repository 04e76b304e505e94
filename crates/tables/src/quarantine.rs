//! Records that could not be read: kept whole, with the reason, never dropped silently.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde::Serialize;

/// One record set aside, written as a line of the drop's quarantine file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedRecord {
    /// What could not be read, naming the field.
    pub reason: String,
    /// Where the record came from: the request window and offset, or the input file.
    pub origin: String,
    /// The record exactly as received (JSON text). When it was not valid UTF-8, this is the
    /// text with each invalid sequence replaced by U+FFFD, and `record_base64` holds its
    /// exact bytes.
    pub record: String,
    /// The exact bytes of a record that was not valid UTF-8 (standard base64); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_base64: Option<String>,
}

impl QuarantinedRecord {
    /// A record set aside, from its bytes as received: kept as text when they are valid UTF-8,
    /// and also byte for byte (base64) when they are not, so that nothing is lost.
    pub fn new(reason: String, origin: String, record: Vec<u8>) -> Self {
        let (record, record_base64) = match String::from_utf8(record) {
            Ok(text) => (text, None),
            Err(e) => {
                let bytes = e.into_bytes();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                (text, Some(BASE64_STANDARD.encode(&bytes)))
            }
        };
        QuarantinedRecord {
            reason,
            origin,
            record,
            record_base64,
        }
    }

    /// One JSON line; the raw record is embedded as a string so that even text that is not
    /// valid JSON survives byte for byte.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("strings serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_kept_byte_for_byte() {
        let bytes = b"{\"text\":\"caf\xE9\"}".to_vec();
        let q = QuarantinedRecord::new("bad".into(), "page 1".into(), bytes.clone());
        assert_eq!(q.record, "{\"text\":\"caf\u{FFFD}\"}");
        let exact = BASE64_STANDARD
            .decode(q.record_base64.as_deref().unwrap())
            .unwrap();
        assert_eq!(exact, bytes);
        let line: serde_json::Value = serde_json::from_str(&q.to_json_line()).unwrap();
        assert_eq!(line["record_base64"].as_str(), q.record_base64.as_deref());

        let good = QuarantinedRecord::new("bad".into(), "page 1".into(), b"{}".to_vec());
        assert_eq!(good.record, "{}");
        assert_eq!(good.record_base64, None);
        assert!(!good.to_json_line().contains("record_base64"));
    }
}
