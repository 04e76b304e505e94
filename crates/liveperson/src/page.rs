//! Decoding search response pages: the envelope first, then each record on its own, so that
//! one unreadable record goes to quarantine while the rest of the page is kept.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::records::Conversation;

/// A decoded MI search page whose records still borrow the page bytes.
#[derive(Debug, Deserialize)]
pub struct Page<'a> {
    #[serde(rename = "_metadata", default)]
    pub metadata: Metadata,
    #[serde(rename = "conversationHistoryRecords", borrow, default)]
    pub records: Vec<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metadata {
    pub count: Option<u64>,
    pub shards_status_result: Option<ShardsStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ShardsStatus {
    pub partial_result: bool,
}

impl Metadata {
    /// True when some backend shards failed and the page may be incomplete.
    pub fn is_partial(&self) -> bool {
        self.shards_status_result
            .as_ref()
            .is_some_and(|s| s.partial_result)
    }
}

/// The envelope alone (records skipped), for reading `count` before decoding.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "_metadata", default)]
    pub metadata: Metadata,
    #[serde(rename = "conversationHistoryRecords", default)]
    records: Vec<serde::de::IgnoredAny>,
}

impl Envelope {
    pub fn record_count(&self) -> usize {
        self.records.len()
    }
}

/// Parses a page. An empty body (LivePerson may answer 204) is an empty page.
pub fn parse_page(body: &[u8]) -> Result<Page<'_>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Page {
            metadata: Metadata::default(),
            records: Vec::new(),
        });
    }
    serde_json::from_slice(body).map_err(|e| format!("unreadable search page: {e}"))
}

/// Parses only the envelope of a page.
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Envelope {
            metadata: Metadata::default(),
            records: Vec::new(),
        });
    }
    serde_json::from_slice(body).map_err(|e| format!("unreadable search page: {e}"))
}

/// Decodes one record; the error says which field could not be read and why.
pub fn decode_record(raw: &RawValue) -> Result<Conversation, String> {
    let conversation: Conversation = match serde_json::from_str(raw.get()) {
        Ok(c) => c,
        // Decode again with path tracking only on failure: it is slower, and failures are rare.
        Err(plain) => {
            let de = &mut serde_json::Deserializer::from_str(raw.get());
            return Err(
                match serde_path_to_error::deserialize::<_, Conversation>(de) {
                    Err(e) => format!("field {}: {}", e.path(), e.inner()),
                    Ok(_) => plain.to_string(),
                },
            );
        }
    };
    if conversation
        .info
        .conversation_id
        .0
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return Err("field info.conversationId: missing".to_string());
    }
    if conversation.info.start_time_l.0.is_none() {
        return Err("field info.startTimeL: missing".to_string());
    }
    Ok(conversation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_record_is_isolated_with_a_reason() {
        let body = br#"{"_metadata":{"count":3,"shardsStatusResult":{"partialResult":false}},
            "conversationHistoryRecords":[
              {"info":{"conversationId":"a","startTimeL":1000}},
              {"info":{"conversationId":"b","startTimeL":1000,"mcs":{"oops":1}}},
              {"info":{"startTimeL":1000}}
            ]}"#;
        let page = parse_page(body).unwrap();
        assert_eq!(page.metadata.count, Some(3));
        assert!(!page.metadata.is_partial());
        let results: Vec<_> = page.records.iter().map(|r| decode_record(r)).collect();
        assert!(results[0].is_ok());
        let reason = results[1].as_ref().unwrap_err();
        assert!(reason.contains("info.mcs"), "{reason}");
        assert!(results[2].as_ref().unwrap_err().contains("conversationId"));
    }

    #[test]
    fn empty_body_is_an_empty_page() {
        let page = parse_page(b"").unwrap();
        assert!(page.records.is_empty());
        assert_eq!(parse_envelope(b" \n").unwrap().record_count(), 0);
    }

    #[test]
    fn truncated_page_is_an_error() {
        assert!(
            parse_page(br#"{"_metadata":{"count":3},"conversationHistoryRecords":[{"#).is_err()
        );
    }
}
