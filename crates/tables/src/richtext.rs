//! The text portion of structured content, for search and compliance review.

use serde_json::Value;

/// Keys whose string values are what a person reads on a card.
const TEXT_KEYS: &[&str] = &["text", "title", "tooltip", "subtitle", "alt"];

/// Extracts readable text from a structured-content JSON document, in document order, one
/// piece per line. `None` when the content is not JSON or holds no text.
pub fn plain_text(json: &str) -> Option<String> {
    let value: Value = serde_json::from_str(json).ok()?;
    let mut parts = Vec::new();
    collect(&value, &mut parts, 0);
    parts.dedup();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("\n"))
    }
}

fn collect<'a>(v: &'a Value, out: &mut Vec<&'a str>, depth: usize) {
    // Cards nest a few levels; a cap keeps hostile input from recursing without end.
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(map) => {
            // `text` first so a button's label comes before its tooltip.
            for key in TEXT_KEYS {
                if let Some(Value::String(s)) = map.get(*key) {
                    let s = s.trim();
                    if !s.is_empty() {
                        out.push(s);
                    }
                }
            }
            for (key, child) in map {
                if !matches!(child, Value::String(_)) || !TEXT_KEYS.contains(&key.as_str()) {
                    collect(child, out, depth + 1);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, out, depth + 1)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_card_text_in_order() {
        let card = r#"{"type":"vertical","elements":[
            {"type":"text","text":"Your flight TA123 is delayed"},
            {"type":"button","title":"Rebook","click":{"actions":[{"type":"publishText","text":"Rebook me"}]}},
            {"type":"image","url":"https://x/y.png","tooltip":"Departure board"}]}"#;
        assert_eq!(
            plain_text(card).unwrap(),
            "Your flight TA123 is delayed\nRebook\nRebook me\nDeparture board"
        );
    }

    #[test]
    fn none_for_non_json_or_no_text() {
        assert_eq!(plain_text("not json"), None);
        assert_eq!(plain_text(r#"{"type":"image","url":"u"}"#), None);
    }
}
