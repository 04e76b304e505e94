//! Decoding search response pages: the envelope first, then each record on its own, so that
//! one unreadable record goes to quarantine while the rest of the page is kept.
//!
//! - Messaging Interactions: [`parse_page`] and [`decode_record`] (`conversationHistoryRecords`).
//! - Engagement History (chat): [`parse_chat_page`] and [`decode_chat_record`]
//!   (`interactionHistoryRecords`).
//! - Account configuration (users, skills, agent groups): [`parse_entity_list`] and
//!   [`decode_user`], [`decode_skill`], [`decode_agent_group`].

use std::cell::OnceCell;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::account_records::{AgentGroup, Skill, User};
use crate::chat_records::ChatRecord;
use crate::records::{Conversation, decode_tracking_path};

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
    /// The number of hits in the window. Advisory: a count sent as a string is read, and one
    /// that cannot be read at all is `None` instead of failing the page (its records are fine).
    #[serde(deserialize_with = "lenient_count")]
    pub count: Option<u64>,
    pub shards_status_result: Option<ShardsStatus>,
}

fn lenient_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
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

/// Parses only the envelope of a page. Invalid UTF-8 inside records does not make the
/// envelope unreadable (see [`RepairedBody`]).
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Envelope {
            metadata: Metadata::default(),
            records: Vec::new(),
        });
    }
    let repaired = OnceCell::new();
    parse_repairing(body, &repaired, |b| {
        serde_json::from_slice(b).map_err(|e| format!("unreadable search page: {e}"))
    })
}

/// A body with its invalid UTF-8 bytes replaced, so that one bad byte in one record does not
/// make a whole page unreadable: JSON text must be UTF-8, and serde_json rejects the whole
/// document for a single bad byte. Each invalid byte becomes `?`, one byte for one, so an
/// offset into the repaired text is the same offset into the original; the records that held
/// a bad byte are then found by their position ([`RepairedBody::damage`]) and quarantined with
/// their original bytes, while every other record of the page is kept.
#[derive(Debug)]
pub struct RepairedBody<'a> {
    original: &'a [u8],
    repaired: Vec<u8>,
    /// Offsets of the replaced bytes, ascending.
    invalid: Vec<usize>,
}

/// A record that held invalid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Names the first bad byte: its offset in the record and its value.
    pub reason: String,
    /// The record exactly as received.
    pub original: Vec<u8>,
}

impl<'a> RepairedBody<'a> {
    /// `None` when `body` is valid UTF-8 (nothing to repair).
    pub fn repair(body: &'a [u8]) -> Option<Self> {
        let mut rest = match std::str::from_utf8(body) {
            Ok(_) => return None,
            Err(e) => e,
        };
        let mut repaired = body.to_vec();
        let mut invalid = Vec::new();
        let mut at = 0;
        loop {
            let bad_from = at + rest.valid_up_to();
            // `None`: the body ends inside a multi-byte sequence; the rest is invalid.
            let bad_len = rest.error_len().unwrap_or(body.len() - bad_from);
            repaired[bad_from..bad_from + bad_len].fill(b'?');
            invalid.extend(bad_from..bad_from + bad_len);
            at = bad_from + bad_len;
            match std::str::from_utf8(&body[at..]) {
                Ok(_) => break,
                Err(e) => rest = e,
            }
        }
        Some(RepairedBody {
            original: body,
            repaired,
            invalid,
        })
    }

    /// The repaired text, valid UTF-8 and as long as the original.
    pub fn bytes(&self) -> &[u8] {
        &self.repaired
    }

    /// Whether `raw`, a value parsed from [`RepairedBody::bytes`], held invalid UTF-8; `None`
    /// when it did not (or when it was not parsed from this body).
    pub fn damage(&self, raw: &RawValue) -> Option<Damage> {
        let start = (raw.get().as_ptr() as usize).checked_sub(self.repaired.as_ptr() as usize)?;
        let end = start + raw.get().len();
        if end > self.repaired.len() {
            return None;
        }
        let inside = &self.invalid[self.invalid.partition_point(|&i| i < start)
            ..self.invalid.partition_point(|&i| i < end)];
        let first = *inside.first()?;
        Some(Damage {
            reason: format!(
                "invalid UTF-8: byte 0x{:02X} at offset {} of the record ({} bad bytes in it)",
                self.original[first],
                first - start,
                inside.len()
            ),
            original: self.original[start..end].to_vec(),
        })
    }
}

/// A record refused by [`decode_repaired`]: why, and its bytes exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: String,
    pub record: Vec<u8>,
}

/// Decodes one record of a page parsed with [`parse_repairing`] (its `repaired` cell): a
/// record that held invalid UTF-8 is refused whatever its content, with its original bytes;
/// any other goes through `decode`.
pub fn decode_repaired<T>(
    raw: &RawValue,
    repaired: &OnceCell<RepairedBody>,
    decode: impl Fn(&RawValue) -> Result<T, String>,
) -> Result<T, Refused> {
    if let Some(damage) = repaired.get().and_then(|r| r.damage(raw)) {
        return Err(Refused {
            reason: damage.reason,
            record: damage.original,
        });
    }
    decode(raw).map_err(|reason| Refused {
        reason,
        record: raw.get().as_bytes().to_vec(),
    })
}

/// Parses `body` with `parse`; when that fails and the body is not valid UTF-8, parses the
/// repaired body instead, kept in `repaired` so that the result may borrow from it and its
/// damaged records can be found.
pub fn parse_repairing<'a, P>(
    body: &'a [u8],
    repaired: &'a OnceCell<RepairedBody<'a>>,
    parse: impl Fn(&'a [u8]) -> Result<P, String>,
) -> Result<P, String> {
    match parse(body) {
        Ok(parsed) => Ok(parsed),
        Err(e) => match RepairedBody::repair(body) {
            None => Err(e),
            Some(fixed) => parse(repaired.get_or_init(|| fixed).bytes()),
        },
    }
}

/// Decodes one JSON value as `T`; the error says which field could not be read and why.
fn decode_as<T: DeserializeOwned>(raw: &RawValue) -> Result<T, String> {
    decode_tracking_path(raw.get()).map_err(|(path, e)| match path {
        Some(path) => format!("field {path}: {e}"),
        None => e.to_string(),
    })
}

/// Decodes one record; the error says which field could not be read and why.
pub fn decode_record(raw: &RawValue) -> Result<Conversation, String> {
    checked(decode_as(raw)?)
}

/// A decoded record, refused when it lacks what every row of it needs.
fn checked(conversation: Conversation) -> Result<Conversation, String> {
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

/// Every record of a page, decoded in one pass over its bytes; `None` when the page needs the
/// record-by-record path ([`parse_page`], then [`decode_record`] on each record's own bytes):
/// when some record would go to quarantine (which keeps its bytes), when the body is not
/// UTF-8 (it is repaired first), or when it is not a page at all. What the pass returns is
/// what that path would have returned, only sooner: the page is not read twice, once to find
/// the records and once to decode each.
pub fn decode_page_at_once(body: &[u8]) -> Option<Vec<Conversation>> {
    #[derive(Deserialize)]
    struct TypedPage {
        // Read as the envelope of [`Page`] is, so that a page one path refuses the other does.
        #[serde(rename = "_metadata", default)]
        _metadata: Metadata,
        #[serde(rename = "conversationHistoryRecords", default)]
        records: Vec<Conversation>,
    }
    let text = std::str::from_utf8(body).ok()?;
    let page: TypedPage = serde_json::from_str(text).ok()?;
    page.records
        .into_iter()
        .map(|record| checked(record).ok())
        .collect()
}

/// A decoded Engagement History search page whose records still borrow the page bytes.
#[derive(Debug, Deserialize)]
pub struct ChatPage<'a> {
    #[serde(rename = "_metadata", default)]
    pub metadata: Metadata,
    #[serde(rename = "interactionHistoryRecords", borrow, default)]
    pub records: Vec<&'a RawValue>,
}

/// Parses an Engagement History page. An empty body is an empty page.
pub fn parse_chat_page(body: &[u8]) -> Result<ChatPage<'_>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ChatPage {
            metadata: Metadata::default(),
            records: Vec::new(),
        });
    }
    serde_json::from_slice(body).map_err(|e| format!("unreadable chat search page: {e}"))
}

/// Decodes one chat record; it needs an engagement id and a start time, like a conversation.
pub fn decode_chat_record(raw: &RawValue) -> Result<ChatRecord, String> {
    let chat: ChatRecord = decode_as(raw)?;
    if chat
        .info
        .engagement_id
        .0
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return Err("field info.engagementId: missing".to_string());
    }
    if chat.info.start_time_l.0.is_none() {
        return Err("field info.startTimeL: missing".to_string());
    }
    Ok(chat)
}

/// Parses an account configuration response: a JSON array of entities (users, skills or agent
/// groups). An empty body (a 304 answer) is an empty list.
pub fn parse_entity_list(body: &[u8]) -> Result<Vec<&RawValue>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    serde_json::from_slice(body).map_err(|e| format!("unreadable entity list: {e}"))
}

/// Decodes one user (agent); it needs an id.
pub fn decode_user(raw: &RawValue) -> Result<User, String> {
    let user: User = decode_as(raw)?;
    if user.id.0.as_deref().is_none_or(str::is_empty) {
        return Err("field id: missing".to_string());
    }
    Ok(user)
}

/// Decodes one skill; it needs an id.
pub fn decode_skill(raw: &RawValue) -> Result<Skill, String> {
    let skill: Skill = decode_as(raw)?;
    if skill.id.0.is_none() {
        return Err("field id: missing".to_string());
    }
    Ok(skill)
}

/// Decodes one agent group; it needs an id.
pub fn decode_agent_group(raw: &RawValue) -> Result<AgentGroup, String> {
    let group: AgentGroup = decode_as(raw)?;
    if group.id.0.is_none() {
        return Err("field id: missing".to_string());
    }
    Ok(group)
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
    fn a_page_decoded_at_once_is_the_page_decoded_record_by_record() {
        let good = br#"{"_metadata":{"count":"2"},"conversationHistoryRecords":[
              {"info":{"conversationId":"a","startTimeL":"1000","mcs":"6"},
               "sdes":{"events":[{"cartStatus":{"total":"11.7"}}]}},
              {"info":{"conversationId":"b","startTimeL":2000},"intents":"undefined"}]}"#;
        let at_once = decode_page_at_once(good).expect("every record decodes");
        let page = parse_page(good).unwrap();
        assert_eq!(at_once.len(), 2);
        for (fast, raw) in at_once.iter().zip(&page.records) {
            assert_eq!(
                format!("{fast:?}"),
                format!("{:?}", decode_record(raw).unwrap())
            );
        }
        // A record that goes to quarantine, one without its id, invalid UTF-8 and an empty
        // body: the record-by-record path, which keeps what it refuses.
        let bad_value = br#"{"conversationHistoryRecords":[{"info":{"conversationId":"a","startTimeL":1,"mcs":{}}}]}"#;
        let no_id = br#"{"conversationHistoryRecords":[{"info":{"startTimeL":1}}]}"#;
        let mut bad_utf8 = good.to_vec();
        let at = bad_utf8.windows(2).position(|w| w == b"\"b").unwrap() + 1;
        bad_utf8[at] = 0xFF;
        for body in [&bad_value[..], &no_id[..], &bad_utf8, b""] {
            assert!(decode_page_at_once(body).is_none());
        }
        // An empty page is an empty page either way.
        assert_eq!(
            decode_page_at_once(br#"{"conversationHistoryRecords":[]}"#).map(|r| r.len()),
            Some(0)
        );
    }

    #[test]
    fn nested_node_errors_name_the_path_inside_the_node() {
        let body = br#"{"conversationHistoryRecords":[
              {"info":{"conversationId":"a","startTimeL":1000},
               "unAuthSdes":{"events":[{"cartStatus":{"total":"11.7"}},{"lead":{"lead":{"value":"lots"}}}]}},
              {"info":{"conversationId":"b","startTimeL":1000},
               "latestAgentSurvey":{"lastUpdateTime":"soon"}},
              {"info":{"conversationId":"c","startTimeL":1000},
               "intents":[{"selectedClassification":{"confidenceScore":"high"}}]}
            ]}"#;
        let page = parse_page(body).unwrap();
        let reasons: Vec<String> = page
            .records
            .iter()
            .map(|r| decode_record(r).unwrap_err())
            .collect();
        assert!(
            reasons[0].starts_with("field unAuthSdes: events[1]: lead.lead: value:"),
            "{}",
            reasons[0]
        );
        assert!(
            reasons[1].starts_with("field latestAgentSurvey: lastUpdateTime:"),
            "{}",
            reasons[1]
        );
        assert!(
            reasons[2].starts_with("field intents: [0].selectedClassification.confidenceScore:"),
            "{}",
            reasons[2]
        );
    }

    #[test]
    fn chat_and_entity_records_need_their_ids() {
        let body = br#"{"interactionHistoryRecords":[
              {"info":{"engagementId":"e1","startTimeL":1000}},
              {"info":{"startTimeL":1000}},
              {"info":{"engagementId":"e3","startTimeL":1000,"chatMCS":{"x":1}}}]}"#;
        let page = parse_chat_page(body).unwrap();
        assert!(decode_chat_record(page.records[0]).is_ok());
        assert!(
            decode_chat_record(page.records[1])
                .unwrap_err()
                .contains("engagementId")
        );
        assert!(
            decode_chat_record(page.records[2])
                .unwrap_err()
                .contains("info.chatMCS")
        );
        let list =
            parse_entity_list(br#"[{"id":"1","deleted":"false"},{"loginName":"x"}]"#).unwrap();
        assert!(decode_user(list[0]).is_ok());
        assert!(decode_user(list[1]).unwrap_err().contains("id"));
        let list = parse_entity_list(br#"[{"id":"12"},{"id":"x"}]"#).unwrap();
        assert_eq!(decode_skill(list[0]).unwrap().id.0, Some(12));
        assert!(
            decode_agent_group(list[1])
                .unwrap_err()
                .contains("field id")
        );
        assert!(parse_entity_list(b"").unwrap().is_empty());
    }

    #[test]
    fn empty_body_is_an_empty_page() {
        let page = parse_page(b"").unwrap();
        assert!(page.records.is_empty());
        assert_eq!(parse_envelope(b" \n").unwrap().record_count(), 0);
    }

    #[test]
    fn count_is_read_leniently() {
        let count = |c: &str| {
            let body =
                format!(r#"{{"_metadata":{{"count":{c}}},"conversationHistoryRecords":[]}}"#);
            parse_envelope(body.as_bytes()).unwrap().metadata.count
        };
        assert_eq!(count("24"), Some(24));
        assert_eq!(count("\"24\""), Some(24));
        assert_eq!(count("24.0"), Some(24));
        assert_eq!(count("\"lots\""), None);
        assert_eq!(count("-3"), None);
        assert_eq!(count("null"), None);
        assert_eq!(count("{\"a\":1}"), None);
    }

    #[test]
    fn invalid_utf8_is_repaired_in_place_and_found_by_record() {
        assert!(RepairedBody::repair(b"{\"a\":\"caf\xc3\xa9\"}").is_none());
        let body: &[u8] = b"{\"conversationHistoryRecords\":[{\"info\":{\"conversationId\":\"a\",\"startTimeL\":1}},{\"info\":{\"conversationId\":\"b\xff\xfe\",\"startTimeL\":1}},{\"info\":{\"conversationId\":\"c\",\"startTimeL\":1,\"x\":\"\xe2\x82\"}}]}";
        assert!(
            parse_page(body).is_err(),
            "serde_json refuses the whole page"
        );
        let repaired = OnceCell::new();
        let page = parse_repairing(body, &repaired, parse_page).unwrap();
        let fixed = repaired.get().unwrap();
        assert_eq!(fixed.bytes().len(), body.len());
        assert_eq!(page.records.len(), 3);
        assert_eq!(fixed.damage(page.records[0]), None);
        let second = fixed.damage(page.records[1]).unwrap();
        assert!(
            second.reason.contains("byte 0xFF at offset 28"),
            "{}",
            second.reason
        );
        assert!(
            second.reason.contains("(2 bad bytes in it)"),
            "{}",
            second.reason
        );
        assert!(second.original.windows(2).any(|w| w == b"\xff\xfe"));
        let third = fixed.damage(page.records[2]).unwrap();
        assert!(third.reason.contains("byte 0xE2"), "{}", third.reason);
        // A value that does not come from this body is never damaged.
        let elsewhere = serde_json::value::RawValue::from_string("1".into()).unwrap();
        assert_eq!(fixed.damage(&elsewhere), None);
        // A body that is broken JSON as well stays an error.
        let repaired = OnceCell::new();
        assert!(parse_repairing(b"{\"a\":\"\xff", &repaired, parse_page).is_err());
        // A body ending inside a multi-byte sequence.
        let cut = RepairedBody::repair(b"\"ab\xe2\x82").unwrap();
        assert_eq!(cut.bytes(), b"\"ab??");
    }

    #[test]
    fn truncated_page_is_an_error() {
        assert!(
            parse_page(br#"{"_metadata":{"count":3},"conversationHistoryRecords":[{"#).is_err()
        );
    }
}
