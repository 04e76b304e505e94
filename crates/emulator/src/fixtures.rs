//! The vendor's own example payloads (`tests/fixtures/liveperson-docs/`), served as they are
//! when [`crate::EmulatorConfig::vendor_fixtures`] is set.
//!
//! - MI search: the first page (offset 0) of a window is one of the two MI examples, chosen by
//!   the UTC day of the window's (rounded) start: day number modulo 2, in the order below. A
//!   deeper page is an empty page with the same `_metadata.count`, as a real search past its
//!   end would be.
//! - EH search: the same with the three EH examples; a search by `engagementId` returns the
//!   example holding that engagement, or an empty page.
//! - MI get-by-id: the first MI example holding a requested id, or an empty page.
//! - Account configuration: the one-entity example of each list inside a JSON array (the API
//!   returns arrays), `include_deleted` and `select` ignored.
//!
//! The bytes of a served example are the file's bytes, unchanged.

use serde_json::Value;

pub(crate) const MI: &[(&str, &[u8])] = &[
    (
        "msghist-search-example.json",
        include_bytes!("../../../tests/fixtures/liveperson-docs/msghist-search-example.json"),
    ),
    (
        "msghist-search-example-sdes.json",
        include_bytes!("../../../tests/fixtures/liveperson-docs/msghist-search-example-sdes.json"),
    ),
];

pub(crate) const EH: &[(&str, &[u8])] = &[
    (
        "enghist-search-example.json",
        include_bytes!("../../../tests/fixtures/liveperson-docs/enghist-search-example.json"),
    ),
    (
        "enghist-search-example-richcontent.json",
        include_bytes!(
            "../../../tests/fixtures/liveperson-docs/enghist-search-example-richcontent.json"
        ),
    ),
    (
        "enghist-search-example-paging-sdes.json",
        include_bytes!(
            "../../../tests/fixtures/liveperson-docs/enghist-search-example-paging-sdes.json"
        ),
    ),
];

pub(crate) const USERS: &[u8] =
    include_bytes!("../../../tests/fixtures/liveperson-docs/users-entity-example.json");
pub(crate) const SKILLS: &[u8] =
    include_bytes!("../../../tests/fixtures/liveperson-docs/skills-entity-example.json");
pub(crate) const AGENT_GROUPS: &[u8] =
    include_bytes!("../../../tests/fixtures/liveperson-docs/agentgroups-entity-example.json");

const DAY_MS: i64 = 86_400_000;

/// The example a search window starting at `from_ms` gets.
pub(crate) fn for_window(set: &'static [(&str, &[u8])], from_ms: i64) -> &'static [u8] {
    let day = from_ms.div_euclid(DAY_MS);
    set[day.rem_euclid(set.len() as i64) as usize].1
}

/// `_metadata.count` of an example.
pub(crate) fn count(body: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["_metadata"]["count"].as_u64())
        .unwrap_or(0)
}

/// The first example of `set` holding a record whose `info.{id_field}` is one of `ids`.
pub(crate) fn holding(
    set: &'static [(&str, &[u8])],
    records_key: &str,
    id_field: &str,
    ids: &[String],
) -> Option<&'static [u8]> {
    set.iter().map(|(_, body)| *body).find(|body| {
        serde_json::from_slice::<Value>(body).is_ok_and(|v| {
            v[records_key].as_array().is_some_and(|records| {
                records.iter().any(|r| {
                    r["info"][id_field]
                        .as_str()
                        .is_some_and(|id| ids.iter().any(|x| x == id))
                })
            })
        })
    })
}

/// A one-entity example as the array the list endpoints return, its bytes kept inside.
pub(crate) fn as_array(entity: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entity.len() + 2);
    out.push(b'[');
    out.extend_from_slice(entity);
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_json_and_the_choice_cycles() {
        for (name, body) in MI.iter().chain(EH) {
            assert!(serde_json::from_slice::<Value>(body).is_ok(), "{name}");
        }
        for entity in [USERS, SKILLS, AGENT_GROUPS] {
            let v: Value = serde_json::from_slice(&as_array(entity)).unwrap();
            assert_eq!(v.as_array().unwrap().len(), 1);
        }
        assert_ne!(for_window(MI, 0), for_window(MI, DAY_MS));
        assert_eq!(for_window(EH, 0), for_window(EH, 3 * DAY_MS + 5));
        assert_eq!(count(EH[2].1), 9870);
    }
}
