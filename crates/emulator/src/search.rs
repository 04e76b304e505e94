//! Messaging Interactions search requests: query parameters, the JSON filter body, window
//! rounding and the filters the emulator honours. Pure functions, so the rules are unit-tested
//! without a server.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::catalog::{AGENTS, GROUPS};
use crate::chat::ChatSkeleton;
use crate::dataset::Skeleton;

/// LivePerson widens `start` to 10-minute boundaries (`from` down, `to` up).
pub const WINDOW_ROUNDING_MS: i64 = 10 * 60 * 1000;
/// The documented "3 months" maximum span of `start`, as 92 days.
pub const MAX_SPAN_MS: i64 = 92 * 86_400_000;
/// The documented "1 month" maximum span of an Engagement History `start`, as 31 days.
pub const MAX_CHAT_SPAN_MS: i64 = 31 * 86_400_000;
pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 100;
/// 9999-12-31T23:59:59.999Z.
const MAX_EPOCH_MS: i64 = 253_402_300_799_999;
/// `source` is required and at most 20 characters.
pub const MAX_SOURCE_LEN: usize = 20;
/// Get-by-id takes at most 100 ids per call.
pub const MAX_IDS: usize = 100;

/// Every valid `contentToRetrieve` value (§3.4).
pub const CONTENT_KEYS: &[&str] = &[
    "campaign",
    "messageRecords",
    "agentParticipants",
    "agentParticipantsLeave",
    "agentParticipantsActive",
    "consumerParticipants",
    "transfers",
    "interactions",
    "messageScores",
    "messageStatuses",
    "conversationSurveys",
    "coBrowseSessions",
    "summary",
    "sdes",
    "unAuthSdes",
    "monitoring",
    "dialogs",
    "responseTime",
    "skillChanges",
    "intents",
    "uniqueIntents",
    "latestAgentSurvey",
    "previouslySubmittedAgentSurveys",
];

/// What a request gets when it sends no `contentToRetrieve` (§3.4).
pub const DEFAULT_CONTENT: &[&str] = &[
    "campaign",
    "messageRecords",
    "agentParticipants",
    "agentParticipantsLeave",
    "agentParticipantsActive",
    "consumerParticipants",
    "transfers",
    "interactions",
    "messageScores",
    "messageStatuses",
    "conversationSurveys",
    "coBrowseSessions",
    "summary",
    "sdes",
];

/// A rounded, inclusive `start` window in epoch ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

/// Validates a requested `start` window and widens it as LivePerson does.
///
/// `to == -1` means `now`. The span limit applies to the window as requested, before rounding
/// widens it by up to 20 minutes, so a client asking for exactly 92 days is not refused.
pub fn round_window(from: i64, to: i64, now_ms: i64) -> Result<Window, String> {
    round_window_within(from, to, now_ms, Some(MAX_SPAN_MS))
}

/// [`round_window`] with another span limit (`None`: no limit), for Engagement History.
pub fn round_window_within(
    from: i64,
    to: i64,
    now_ms: i64,
    max_span_ms: Option<i64>,
) -> Result<Window, String> {
    let to = if to == -1 { now_ms } else { to };
    // Years beyond 9999 are not times anyone stores; refusing them keeps every later
    // calculation (start times, ids, dates) far from overflow.
    if from < 0 || to < 0 || from > MAX_EPOCH_MS || to > MAX_EPOCH_MS {
        return Err(
            "start.from and start.to must be epoch milliseconds (to may be -1 for now)".into(),
        );
    }
    if from > to {
        return Err(format!("start.from ({from}) is after start.to ({to})"));
    }
    if let Some(max) = max_span_ms
        && to - from > max
    {
        let limit = if max == MAX_SPAN_MS {
            "3 months".to_string()
        } else {
            "1 month".to_string()
        };
        return Err(format!(
            "start window spans {} ms; the maximum is {limit} ({max} ms, {} days)",
            to - from,
            max / 86_400_000
        ));
    }
    let rem = to.rem_euclid(WINDOW_ROUNDING_MS);
    Ok(Window {
        from: from - from.rem_euclid(WINDOW_ROUNDING_MS),
        to: if rem == 0 {
            to
        } else {
            to - rem + WINDOW_ROUNDING_MS
        },
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    StartAsc,
    StartDesc,
}

/// The validated query string of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub offset: u64,
    pub limit: u64,
    pub sort: Sort,
    /// `v=2` is what unlocks `unAuthSdes`.
    pub v2: bool,
    pub source: String,
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `source` as LivePerson requires it: present, non-empty, at most 20 characters.
pub fn parse_source(pairs: &[(String, String)]) -> Result<String, String> {
    match param(pairs, "source") {
        None | Some("") => Err("query parameter 'source' is required".into()),
        Some(s) if s.chars().count() > MAX_SOURCE_LEN => Err(format!(
            "query parameter 'source' is longer than {MAX_SOURCE_LEN} characters"
        )),
        Some(s) => Ok(s.to_string()),
    }
}

/// `v`: absent or `1` → v1, `2` → v2.
pub fn parse_version(pairs: &[(String, String)]) -> Result<bool, String> {
    match param(pairs, "v") {
        None | Some("1") | Some("1.0") => Ok(false),
        Some("2") | Some("2.0") => Ok(true),
        Some(other) => Err(format!("query parameter 'v' must be 1 or 2, got '{other}'")),
    }
}

pub fn parse_query(pairs: &[(String, String)]) -> Result<SearchQuery, String> {
    let number = |name: &str, default: u64| -> Result<u64, String> {
        match param(pairs, name) {
            None => Ok(default),
            Some(v) => v.trim().parse::<u64>().map_err(|_| {
                format!("query parameter '{name}' must be a non-negative integer, got '{v}'")
            }),
        }
    };
    let offset = number("offset", 0)?;
    let limit = number("limit", DEFAULT_LIMIT)?;
    if limit > MAX_LIMIT {
        return Err(format!(
            "query parameter 'limit' must be at most {MAX_LIMIT}, got {limit}"
        ));
    }
    let sort = match param(pairs, "sort") {
        None | Some("start:asc") => Sort::StartAsc,
        Some("start:desc") => Sort::StartDesc,
        Some(s @ ("end:asc" | "end:desc")) => {
            return Err(format!(
                "sort '{s}' is not supported by the emulator; use start:asc or start:desc"
            ));
        }
        Some(s) => {
            return Err(format!(
                "query parameter 'sort' must be start:asc or start:desc, got '{s}'"
            ));
        }
    };
    Ok(SearchQuery {
        offset,
        limit,
        sort,
        v2: parse_version(pairs)?,
        source: parse_source(pairs)?,
    })
}

/// The filters the emulator honours. Every other documented filter is accepted and ignored
/// (the real API has dozens; refusing them would break clients that send them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `Some(open)` when `status` asks for one kind only; both or none → `None`.
    status: Option<StatusFilter>,
    skill_ids: Option<HashSet<i64>>,
    agent_ids: Option<HashSet<String>>,
    latest_skill_ids: Option<HashSet<i64>>,
    latest_agent_ids: Option<HashSet<String>>,
    agent_group_ids: Option<HashSet<i64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatusFilter {
    open: bool,
    closed: bool,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    pub(crate) fn matches(&self, sk: &Skeleton) -> bool {
        if let Some(s) = self.status
            && !(if sk.open { s.open } else { s.closed })
        {
            return false;
        }
        if let Some(ids) = &self.skill_ids
            && !sk.skill_ids().any(|id| ids.contains(&id))
        {
            return false;
        }
        // "agentIds" matches the assigned agent, which every segment's agent was.
        if let Some(ids) = &self.agent_ids
            && !sk.agent_ids().any(|id| ids.contains(id))
        {
            return false;
        }
        let latest = sk.latest();
        if let Some(ids) = &self.latest_skill_ids
            && !sk.skill_ids().last().is_some_and(|id| ids.contains(&id))
        {
            return false;
        }
        if let Some(ids) = &self.latest_agent_ids
            && !ids.contains(AGENTS[latest.agent].id)
        {
            return false;
        }
        if let Some(ids) = &self.agent_group_ids
            && !sk
                .segments
                .iter()
                .any(|s| ids.contains(&GROUPS[AGENTS[s.agent].group].id))
        {
            return false;
        }
        true
    }
}

/// Which record nodes a request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    keys: Vec<&'static str>,
}

impl Content {
    pub fn default_set() -> Self {
        Content {
            keys: DEFAULT_CONTENT.to_vec(),
        }
    }

    /// Trims a full record to `info` plus the requested nodes. `unAuthSdes` needs `v=2`.
    pub fn apply(&self, record: Value, v2: bool) -> Value {
        let Value::Object(mut full) = record else {
            return record;
        };
        let mut out = Map::new();
        if let Some(info) = full.remove("info") {
            out.insert("info".into(), info);
        }
        for key in &self.keys {
            if *key == "unAuthSdes" && !v2 {
                continue;
            }
            if let Some(v) = full.remove(*key) {
                out.insert((*key).to_string(), v);
            }
        }
        Value::Object(out)
    }
}

/// A validated search body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchBody {
    pub window: Window,
    pub filter: Filter,
    pub content: Content,
}

/// Parses and validates the JSON body of `conversations/search`.
pub fn parse_body(bytes: &[u8], now_ms: i64) -> Result<SearchBody, String> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("request body is not valid JSON: {e}"))?;
    let Value::Object(body) = body else {
        return Err("request body must be a JSON object".into());
    };
    let start = body
        .get("start")
        .ok_or("'start' is required (an object {\"from\":ms,\"to\":ms})")?;
    let Value::Object(start) = start else {
        return Err("'start' must be an object {\"from\":ms,\"to\":ms}".into());
    };
    let bound = |name: &str| -> Result<i64, String> {
        let v = start
            .get(name)
            .ok_or_else(|| format!("'start.{name}' is required"))?;
        as_i64(v).ok_or_else(|| format!("'start.{name}' must be an epoch-ms number, got {v}"))
    };
    let window = round_window(bound("from")?, bound("to")?, now_ms)?;

    let mut filter = Filter::default();
    if let Some(v) = present(&body, "status") {
        let mut s = StatusFilter {
            open: false,
            closed: false,
        };
        for item in array(v, "status")? {
            match item.as_str().map(str::to_ascii_uppercase).as_deref() {
                Some("OPEN") => s.open = true,
                Some("CLOSE") => s.closed = true,
                // Documented by some but never produced here: matches nothing.
                Some("OVERDUE") => {}
                _ => {
                    return Err(format!("'status' values must be OPEN or CLOSE, got {item}"));
                }
            }
        }
        filter.status = Some(s);
    }
    filter.skill_ids = number_set(&body, "skillIds")?;
    filter.latest_skill_ids = number_set(&body, "latestSkillIds")?;
    filter.agent_group_ids = number_set(&body, "agentGroupIds")?;
    filter.agent_ids = string_set(&body, "agentIds")?;
    filter.latest_agent_ids = string_set(&body, "latestAgentIds")?;

    Ok(SearchBody {
        window,
        filter,
        content: parse_content(&body)?,
    })
}

/// `contentToRetrieve`: absent → the default set; present → exactly the listed keys.
pub fn parse_content(body: &Map<String, Value>) -> Result<Content, String> {
    let Some(v) = present(body, "contentToRetrieve") else {
        return Ok(Content::default_set());
    };
    let mut keys = Vec::new();
    for item in array(v, "contentToRetrieve")? {
        let name = item
            .as_str()
            .ok_or_else(|| format!("'contentToRetrieve' values must be strings, got {item}"))?;
        if name == "info" {
            continue; // always returned; harmless to ask for
        }
        let key = CONTENT_KEYS
            .iter()
            .find(|k| **k == name)
            .ok_or_else(|| format!("unknown contentToRetrieve value '{name}'"))?;
        if !keys.contains(key) {
            keys.push(*key);
        }
    }
    Ok(Content { keys })
}

/// A field that is present and not `null`.
fn present<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

fn array<'a>(v: &'a Value, name: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("'{name}' must be an array"))
}

/// An empty array means "no filter", as an absent field does.
fn number_set(body: &Map<String, Value>, name: &str) -> Result<Option<HashSet<i64>>, String> {
    let Some(v) = present(body, name) else {
        return Ok(None);
    };
    let items = array(v, name)?;
    if items.is_empty() {
        return Ok(None);
    }
    items
        .iter()
        .map(|item| {
            as_i64(item).ok_or_else(|| format!("'{name}' values must be numbers, got {item}"))
        })
        .collect::<Result<HashSet<_>, _>>()
        .map(Some)
}

fn string_set(body: &Map<String, Value>, name: &str) -> Result<Option<HashSet<String>>, String> {
    let Some(v) = present(body, name) else {
        return Ok(None);
    };
    let items = array(v, name)?;
    if items.is_empty() {
        return Ok(None);
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!("'{name}' values must be ids, got {other}")),
        })
        .collect::<Result<HashSet<_>, _>>()
        .map(Some)
}

/// A number, or a string holding one: the vendor's own examples send both.
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The ids of a get-by-id body: `conversationId` or `conversationIds` (at most 100).
pub fn parse_ids(body: &Map<String, Value>) -> Result<Vec<String>, String> {
    if let Some(v) = present(body, "conversationIds") {
        let items = array(v, "conversationIds")?;
        if items.len() > MAX_IDS {
            return Err(format!(
                "'conversationIds' holds {} ids; the maximum is {MAX_IDS}",
                items.len()
            ));
        }
        return items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("'conversationIds' values must be strings, got {i}"))
            })
            .collect();
    }
    match present(body, "conversationId") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(other) => Err(format!("'conversationId' must be a string, got {other}")),
        None => Err("'conversationId' or 'conversationIds' is required".into()),
    }
}

// ---- Engagement History (§4.1) ----------------------------------------------------------------

/// Fields an EH `sort` may name; the emulator sorts by `start` only.
const CHAT_SORT_FIELDS: &[&str] = &[
    "start",
    "end",
    "duration",
    "visitor",
    "engagementId",
    "interactive",
    "agentId",
    "skillId",
];

/// The validated query string of an EH search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatQuery {
    pub offset: u64,
    pub limit: u64,
    pub sort: Sort,
    pub source: String,
}

pub fn parse_chat_query(pairs: &[(String, String)]) -> Result<ChatQuery, String> {
    // offset, limit and source follow the MI rules; `v` does not exist on EH (ignored).
    let base = parse_query(
        &pairs
            .iter()
            .filter(|(k, _)| k != "sort" && k != "v")
            .cloned()
            .collect::<Vec<_>>(),
    )?;
    let sort = match param(pairs, "sort") {
        None => Sort::StartAsc,
        Some(spec) => {
            let mut sort = None;
            for part in spec.split(',') {
                let (field, dir) = part.trim().split_once(':').ok_or_else(|| {
                    format!("query parameter 'sort' must be field:asc|desc[,...], got '{spec}'")
                })?;
                if !CHAT_SORT_FIELDS.contains(&field) || !matches!(dir, "asc" | "desc") {
                    return Err(format!(
                        "query parameter 'sort': unknown '{part}'; fields are {}, with asc or desc",
                        CHAT_SORT_FIELDS.join(", ")
                    ));
                }
                if field != "start" || sort.is_some() {
                    return Err(format!(
                        "sort '{spec}' is not supported by the emulator; use start:asc or start:desc"
                    ));
                }
                sort = Some(if dir == "asc" {
                    Sort::StartAsc
                } else {
                    Sort::StartDesc
                });
            }
            sort.unwrap_or(Sort::StartAsc)
        }
    };
    Ok(ChatQuery {
        offset: base.offset,
        limit: base.limit,
        sort,
        source: base.source,
    })
}

/// The EH filters the emulator honours; the others (keyword, mcs, durations...) are accepted
/// and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatFilter {
    skill_ids: Option<HashSet<i64>>,
    agent_ids: Option<HashSet<String>>,
    agent_group_ids: Option<HashSet<i64>>,
    /// `interactive: true` (the only value the API supports).
    interactive: bool,
    /// `ended: false` matches nothing: only ended chats are returned.
    not_ended: bool,
    /// A channel other than 1 (chat) matches nothing.
    other_channel: bool,
    pub engagement_id: Option<String>,
    pub visitor: Option<String>,
}

impl ChatFilter {
    /// Nothing to look at beyond the window (counts are then arithmetic).
    pub fn is_empty(&self) -> bool {
        *self == ChatFilter::default()
    }

    pub(crate) fn matches(&self, sk: &ChatSkeleton) -> bool {
        if self.not_ended || self.other_channel {
            return false;
        }
        if self.interactive && !sk.interactive {
            return false;
        }
        if let Some(ids) = &self.skill_ids
            && !ids.contains(&sk.skill_id())
        {
            return false;
        }
        if let Some(ids) = &self.agent_ids
            && !ids.contains(sk.agent_id())
        {
            return false;
        }
        if let Some(ids) = &self.agent_group_ids
            && !ids.contains(&sk.agent_group_id())
        {
            return false;
        }
        true
    }
}

/// A validated EH search body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatBody {
    pub window: Window,
    pub filter: ChatFilter,
}

/// Parses and validates the JSON body of `interactions/search`: `start` is required, at most 1
/// month, unless `engagementId` or `visitor` is given (then the span is not limited).
pub fn parse_chat_body(bytes: &[u8], now_ms: i64) -> Result<ChatBody, String> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("request body is not valid JSON: {e}"))?;
    let Value::Object(body) = body else {
        return Err("request body must be a JSON object".into());
    };
    let mut filter = ChatFilter {
        skill_ids: number_set(&body, "skillIds")?,
        agent_group_ids: number_set(&body, "agentGroupIds")?,
        agent_ids: string_set(&body, "agentIds")?,
        ..ChatFilter::default()
    };
    let text = |name: &str| -> Result<Option<String>, String> {
        match present(&body, name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(format!("'{name}' must be a string, got {other}")),
        }
    };
    filter.engagement_id = text("engagementId")?;
    filter.visitor = text("visitor")?;
    let flag = |name: &str| -> Result<Option<bool>, String> {
        match present(&body, name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(other) => Err(format!("'{name}' must be a boolean, got {other}")),
        }
    };
    match flag("interactive")? {
        Some(false) => return Err("'interactive' supports only true".into()),
        Some(true) => filter.interactive = true,
        None => {}
    }
    filter.not_ended = flag("ended")? == Some(false);
    if let Some(v) = present(&body, "channel") {
        let channel = as_i64(v).ok_or_else(|| format!("'channel' must be -1, 1 or 2, got {v}"))?;
        if !matches!(channel, -1 | 1 | 2) {
            return Err(format!("'channel' must be -1, 1 or 2, got {channel}"));
        }
        filter.other_channel = channel != 1;
    }
    if let Some(v) = present(&body, "duration") {
        let ok = v.get("from").is_some_and(|x| as_i64(x).is_some())
            && v.get("to").is_some_and(|x| as_i64(x).is_some());
        if !ok {
            return Err("'duration' needs both 'from' and 'to', in seconds".into());
        }
    }
    let unlimited = filter.engagement_id.is_some() || filter.visitor.is_some();
    let start = body
        .get("start")
        .ok_or("'start' is required (an object {\"from\":ms,\"to\":ms})")?;
    let Value::Object(start) = start else {
        return Err("'start' must be an object {\"from\":ms,\"to\":ms}".into());
    };
    let bound = |name: &str| -> Result<i64, String> {
        let v = start
            .get(name)
            .ok_or_else(|| format!("'start.{name}' is required"))?;
        as_i64(v).ok_or_else(|| format!("'start.{name}' must be an epoch-ms number, got {v}"))
    };
    let max = (!unlimited).then_some(MAX_CHAT_SPAN_MS);
    let window = round_window_within(bound("from")?, bound("to")?, now_ms, max)?;
    Ok(ChatBody { window, filter })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z, not on a 10-minute boundary

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn rounds_from_down_and_to_up_to_ten_minutes() {
        let w = round_window(T0 + 1, T0 + 2, 0).unwrap();
        assert_eq!(w.from % WINDOW_ROUNDING_MS, 0);
        assert_eq!(w.to % WINDOW_ROUNDING_MS, 0);
        assert!(w.from <= T0 + 1 && T0 + 1 - w.from < WINDOW_ROUNDING_MS);
        assert!(w.to >= T0 + 2 && w.to - (T0 + 2) < WINDOW_ROUNDING_MS);
        // Already on a boundary: unchanged (bounds are inclusive, not widened further).
        let b = T0 - T0 % WINDOW_ROUNDING_MS;
        assert_eq!(
            round_window(b, b + WINDOW_ROUNDING_MS, 0).unwrap(),
            Window {
                from: b,
                to: b + WINDOW_ROUNDING_MS
            }
        );
        // One ms past a boundary rounds up to the next one.
        assert_eq!(
            round_window(b, b + 1, 0).unwrap().to,
            b + WINDOW_ROUNDING_MS
        );
        assert_eq!(
            round_window(b - 1, b, 0).unwrap().from,
            b - WINDOW_ROUNDING_MS
        );
    }

    #[test]
    fn minus_one_means_now() {
        let w = round_window(T0 - 3_600_000, -1, T0).unwrap();
        assert!(w.to >= T0 && w.to - T0 < WINDOW_ROUNDING_MS);
    }

    #[test]
    fn span_limit_is_92_days() {
        assert!(round_window(T0, T0 + MAX_SPAN_MS, 0).is_ok());
        let err = round_window(T0, T0 + MAX_SPAN_MS + 1, 0).unwrap_err();
        assert!(err.contains("3 months"), "{err}");
        assert!(round_window(T0, T0 - 1, 0).is_err());
        assert!(round_window(-5, T0, 0).is_err());
        assert!(round_window(i64::MAX - 10, i64::MAX, 0).is_err());
    }

    #[test]
    fn query_defaults_and_limits() {
        let q = parse_query(&pairs(&[("source", "ETL")])).unwrap();
        assert_eq!(
            q,
            SearchQuery {
                offset: 0,
                limit: 50,
                sort: Sort::StartAsc,
                v2: false,
                source: "ETL".into()
            }
        );
        let q = parse_query(&pairs(&[
            ("source", "ETL"),
            ("limit", "100"),
            ("offset", "300"),
            ("sort", "start:desc"),
            ("v", "2"),
        ]))
        .unwrap();
        assert_eq!(
            (q.limit, q.offset, q.sort, q.v2),
            (100, 300, Sort::StartDesc, true)
        );
        for bad in [
            vec![("limit", "10")],
            vec![("source", "ETL"), ("limit", "101")],
            vec![("source", "ETL"), ("limit", "ten")],
            vec![("source", "ETL"), ("offset", "-1")],
            vec![("source", "ETL"), ("sort", "end:asc")],
            vec![("source", "ETL"), ("v", "3")],
            vec![("source", "123456789012345678901")],
            vec![("source", "")],
        ] {
            assert!(parse_query(&pairs(&bad)).is_err(), "{bad:?}");
        }
        // 20 characters, counted as characters rather than bytes.
        assert!(parse_query(&pairs(&[("source", "ÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄ")])).is_ok());
    }

    #[test]
    fn body_accepts_numbers_and_numeric_strings() {
        let a = parse_body(br#"{"start":{"from":1700000000000,"to":1700003600000}}"#, 0).unwrap();
        let b = parse_body(
            br#"{"start":{"from":"1700000000000","to":"1700003600000"}}"#,
            0,
        )
        .unwrap();
        assert_eq!(a, b);
        assert!(a.filter.is_empty());
        assert_eq!(a.content, Content::default_set());
    }

    #[test]
    fn body_errors_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"{not json", "not valid JSON"),
            (b"[]", "JSON object"),
            (br#"{"status":["OPEN"]}"#, "'start' is required"),
            (br#"{"start":{"from":1}}"#, "'start.to' is required"),
            (br#"{"start":{"from":"abc","to":5}}"#, "'start.from'"),
            (br#"{"start":{"from":1,"to":9000000000000}}"#, "3 months"),
            (
                br#"{"start":{"from":1,"to":2},"status":["DONE"]}"#,
                "status",
            ),
            (br#"{"start":{"from":1,"to":2},"skillIds":"1"}"#, "skillIds"),
            (
                br#"{"start":{"from":1,"to":2},"contentToRetrieve":["bogus"]}"#,
                "bogus",
            ),
        ];
        for (body, needle) in cases {
            let err = parse_body(body, 0).unwrap_err();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn content_to_retrieve_is_exact_and_info_is_always_kept() {
        let body = parse_body(
            br#"{"start":{"from":1,"to":2},"contentToRetrieve":["info","transfers","unAuthSdes"]}"#,
            0,
        )
        .unwrap();
        let record =
            serde_json::json!({"info": {}, "transfers": [], "campaign": {}, "unAuthSdes": {}});
        let v1 = body.content.apply(record.clone(), false);
        assert_eq!(v1, serde_json::json!({"info": {}, "transfers": []}));
        let v2 = body.content.apply(record, true);
        assert_eq!(
            v2,
            serde_json::json!({"info": {}, "transfers": [], "unAuthSdes": {}})
        );
    }

    #[test]
    fn ids_body() {
        let body = |s: &str| serde_json::from_str::<Map<String, Value>>(s).unwrap();
        assert_eq!(
            parse_ids(&body(r#"{"conversationId":"a"}"#)).unwrap(),
            ["a"]
        );
        assert_eq!(
            parse_ids(&body(r#"{"conversationIds":["a","b"]}"#)).unwrap(),
            ["a", "b"]
        );
        assert!(parse_ids(&body("{}")).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("\"{i}\"")).collect();
        let err = parse_ids(&body(&format!(
            r#"{{"conversationIds":[{}]}}"#,
            many.join(",")
        )))
        .unwrap_err();
        assert!(err.contains("100"));
    }

    #[test]
    fn chat_requests_follow_the_eh_rules() {
        let q = parse_chat_query(&pairs(&[("source", "ETL"), ("sort", "start:desc")])).unwrap();
        assert_eq!((q.sort, q.limit), (Sort::StartDesc, 50));
        assert!(
            parse_chat_query(&pairs(&[("source", "ETL"), ("sort", "duration:asc")]))
                .unwrap_err()
                .contains("not supported")
        );
        assert!(
            parse_chat_query(&pairs(&[("source", "ETL"), ("sort", "bogus:asc")]))
                .unwrap_err()
                .contains("unknown")
        );
        assert!(parse_chat_query(&pairs(&[("limit", "10")])).is_err());
        // One month at most...
        let day = 86_400_000;
        let ok = format!(r#"{{"start":{{"from":{T0},"to":{}}}}}"#, T0 + 31 * day);
        assert!(parse_chat_body(ok.as_bytes(), 0).is_ok());
        let long = format!(r#"{{"start":{{"from":{T0},"to":{}}}}}"#, T0 + 32 * day);
        assert!(
            parse_chat_body(long.as_bytes(), 0)
                .unwrap_err()
                .contains("1 month")
        );
        // ...unless one engagement or visitor is asked for.
        let by_id = format!(
            r#"{{"start":{{"from":{T0},"to":{}}},"engagementId":"123"}}"#,
            T0 + 200 * day
        );
        let b = parse_chat_body(by_id.as_bytes(), 0).unwrap();
        assert_eq!(b.filter.engagement_id.as_deref(), Some("123"));
        for (body, needle) in [
            (r#"{"skillIds":["1"]}"#, "'start' is required"),
            (
                r#"{"start":{"from":1,"to":2},"interactive":false}"#,
                "only true",
            ),
            (r#"{"start":{"from":1,"to":2},"channel":7}"#, "channel"),
            (
                r#"{"start":{"from":1,"to":2},"duration":{"from":1}}"#,
                "duration",
            ),
            (
                r#"{"start":{"from":1,"to":2},"skillIds":["x"]}"#,
                "skillIds",
            ),
        ] {
            let err = parse_chat_body(body.as_bytes(), 0).unwrap_err();
            assert!(err.contains(needle), "{body}: {err}");
        }
        let f = parse_chat_body(
            br#"{"start":{"from":1,"to":2},"skillIds":["1100000001"],"ended":true}"#,
            0,
        )
        .unwrap();
        assert!(!f.filter.is_empty());
    }
}
