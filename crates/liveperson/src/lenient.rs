//! Lenient scalar types for LivePerson payloads.
//!
//! LivePerson sends the same field as a string in one record and a number in the next, and
//! writes "not set" as `"undefined"`, `"null"` or `-1`. Each type here normalises what can be
//! normalised and maps placeholders to `None`; a value that cannot be read as the field's type
//! (say an object where a number belongs, or `"abc"` for a count) is an error, so the whole
//! record goes to quarantine with the reason instead of losing the value silently.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Strings LivePerson uses for "no value".
pub fn is_placeholder(s: &str) -> bool {
    matches!(s, "undefined" | "null" | "NULL" | "Undefined")
}

/// An optional string; numbers and booleans are kept as their JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Text(pub Option<String>);

/// An optional signed integer, from a JSON number or a numeric string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Int(pub Option<i64>);

/// An optional identifier number where `-1` (LivePerson's "unassigned") means `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Id(pub Option<i64>);

/// An optional float, from a JSON number or a numeric string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Float(pub Option<f64>);

/// An optional boolean, from `true`/`false`, `"true"`/`"false"` or `0`/`1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bool(pub Option<bool>);

/// An optional instant in epoch milliseconds; `-1`, `0` and placeholders mean `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EpochMs(pub Option<i64>);

/// Any JSON value, kept as its compact JSON text (for free-form nodes stored as JSON columns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawJson(pub Option<String>);

/// What a lenient visitor saw, before the field's own rule turns it into a value.
enum Scalar {
    None,
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

/// Reads any JSON scalar; arrays and objects are refused with `expected`.
struct ScalarVisitor(&'static str);

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::None)
    }
    fn visit_none<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D, expected: &'static str) -> Result<Scalar, D::Error> {
    d.deserialize_any(ScalarVisitor(expected))
}

/// Normalises a scalar to an integer; `what` names the field's type in the error.
fn to_i64<E: de::Error>(s: Scalar, what: &str) -> Result<Option<i64>, E> {
    match s {
        Scalar::None => Ok(None),
        Scalar::I64(v) => Ok(Some(v)),
        Scalar::U64(v) => i64::try_from(v)
            .map(Some)
            .map_err(|_| E::custom(format!("{what} {v} is out of range"))),
        Scalar::F64(v) if v.fract() == 0.0 && v.abs() < 9.0e18 => Ok(Some(v as i64)),
        Scalar::F64(v) => Err(E::custom(format!("{what} {v} is not a whole number"))),
        Scalar::Str(s) => {
            let t = s.trim();
            if t.is_empty() || is_placeholder(t) {
                return Ok(None);
            }
            if let Ok(v) = t.parse::<i64>() {
                return Ok(Some(v));
            }
            match t.parse::<f64>() {
                Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(Some(f as i64)),
                _ => Err(E::custom(format!("{what} {s:?} is not a number"))),
            }
        }
        Scalar::Bool(b) => Err(E::custom(format!("{what} got boolean {b}"))),
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(match scalar(d, "a string")? {
            Scalar::None => None,
            Scalar::Str(s) if is_placeholder(&s) => None,
            Scalar::Str(s) => Some(s),
            Scalar::I64(v) => Some(v.to_string()),
            Scalar::U64(v) => Some(v.to_string()),
            Scalar::F64(v) => Some(v.to_string()),
            Scalar::Bool(b) => Some(b.to_string()),
        }))
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Int(to_i64(scalar(d, "an integer")?, "integer")?))
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = to_i64(scalar(d, "a numeric id")?, "id")?;
        Ok(Id(v.filter(|&v| v != -1)))
    }
}

impl<'de> Deserialize<'de> for EpochMs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = to_i64(scalar(d, "epoch milliseconds")?, "epoch milliseconds")?;
        // -1 and 0 are LivePerson's "not yet" (an open conversation's end time).
        Ok(EpochMs(v.filter(|&v| v > 0)))
    }
}

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = match scalar(d, "a number")? {
            Scalar::None => None,
            Scalar::I64(v) => Some(v as f64),
            Scalar::U64(v) => Some(v as f64),
            Scalar::F64(v) => Some(v),
            Scalar::Str(s) => {
                let t = s.trim();
                if t.is_empty() || is_placeholder(t) {
                    None
                } else {
                    match t.parse::<f64>() {
                        Ok(f) if f.is_finite() => Some(f),
                        _ => {
                            return Err(de::Error::custom(format!("number {s:?} is not a number")));
                        }
                    }
                }
            }
            Scalar::Bool(b) => return Err(de::Error::custom(format!("number got boolean {b}"))),
        };
        Ok(Float(v))
    }
}

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = match scalar(d, "a boolean")? {
            Scalar::None => None,
            Scalar::Bool(b) => Some(b),
            Scalar::I64(0) | Scalar::U64(0) => Some(false),
            Scalar::I64(1) | Scalar::U64(1) => Some(true),
            Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                t if t.is_empty() || is_placeholder(t) => None,
                _ => return Err(de::Error::custom(format!("boolean {s:?} is not a boolean"))),
            },
            Scalar::I64(v) => return Err(de::Error::custom(format!("boolean got {v}"))),
            Scalar::U64(v) => return Err(de::Error::custom(format!("boolean got {v}"))),
            Scalar::F64(v) => return Err(de::Error::custom(format!("boolean got {v}"))),
        };
        Ok(Bool(v))
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RawJson(kept_text(Box::<RawValue>::deserialize(d)?)))
    }
}

/// The text a JSON column keeps for a raw value: `None` for `null`, else the sender's own text
/// with the whitespace between tokens removed ([`compact_json`]).
pub fn kept_text(raw: Box<RawValue>) -> Option<String> {
    if raw.get() == "null" {
        return None;
    }
    Some(match compact_json(raw.get()) {
        // Already compact (what the APIs send): the text is kept without another copy.
        Cow::Borrowed(_) => String::from(Box::<str>::from(raw)),
        Cow::Owned(compacted) => compacted,
    })
}

/// A JSON text without the whitespace between its tokens; keys, numbers and escapes stay as
/// sent. Reading the text back into a tree and writing it out again would sort the keys and
/// rewrite numbers and escapes, at several times the cost of the rest of the decode.
pub fn compact_json(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    // What the APIs send is compact already; most nodes have no whitespace byte at all.
    if !bytes.iter().any(|&b| is_space(b)) {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        if b == b'"' {
            // Copy the whole string: find its closing quote, skipping escaped characters.
            let mut end = at + 1;
            loop {
                match memchr::memchr2(b'"', b'\\', bytes.get(end..).unwrap_or_default()) {
                    Some(found) if bytes[end + found] == b'"' => {
                        end += found + 1;
                        break;
                    }
                    // A backslash and the character it escapes.
                    Some(found) => end += found + 2,
                    None => {
                        end = bytes.len();
                        break;
                    }
                }
            }
            let end = end.min(bytes.len());
            out.extend_from_slice(&bytes[at..end]);
            at = end;
        } else {
            if !is_space(b) {
                out.push(b);
            }
            at += 1;
        }
    }
    if out.len() == bytes.len() {
        return Cow::Borrowed(text); // the whitespace was all inside strings
    }
    // Only ASCII whitespace outside strings was removed, so the text is still UTF-8.
    Cow::Owned(String::from_utf8(out).expect("removing ASCII keeps UTF-8"))
}

/// Deserializes a list that may be absent, `null`, or (rarely) a single object instead of a list.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ListVisitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_unit<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            let one = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(vec![one])
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
            if v.is_empty() || is_placeholder(v) {
                Ok(Vec::new())
            } else {
                Err(E::custom(format!("expected a list, got string {v:?}")))
            }
        }
    }
    d.deserialize_any(ListVisitor(std::marker::PhantomData))
}

/// Skips any value (used where a node is accepted but not yet modelled).
pub type Ignored = IgnoredAny;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: for<'a> Deserialize<'a>>(json: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn text_maps_placeholders_and_keeps_numbers() {
        assert_eq!(parse::<Text>("\"undefined\"").unwrap(), Text(None));
        assert_eq!(parse::<Text>("\"null\"").unwrap(), Text(None));
        assert_eq!(parse::<Text>("null").unwrap(), Text(None));
        assert_eq!(parse::<Text>("\"\"").unwrap(), Text(Some(String::new())));
        assert_eq!(
            parse::<Text>("2200000002").unwrap(),
            Text(Some("2200000002".into()))
        );
        assert_eq!(
            parse::<Text>("\"Müller ✈\"").unwrap(),
            Text(Some("Müller ✈".into()))
        );
        assert!(parse::<Text>("{\"a\":1}").is_err());
        assert!(parse::<Text>("[1]").is_err());
    }

    #[test]
    fn int_accepts_strings_and_whole_floats() {
        assert_eq!(parse::<Int>("\"6\"").unwrap(), Int(Some(6)));
        assert_eq!(parse::<Int>("6").unwrap(), Int(Some(6)));
        assert_eq!(parse::<Int>("6.0").unwrap(), Int(Some(6)));
        assert_eq!(parse::<Int>("-1").unwrap(), Int(Some(-1)));
        assert_eq!(parse::<Int>("\"undefined\"").unwrap(), Int(None));
        assert!(parse::<Int>("6.5").is_err());
        assert!(parse::<Int>("\"abc\"").is_err());
        assert!(parse::<Int>("18446744073709551615").is_err());
        assert!(parse::<Int>("true").is_err());
    }

    #[test]
    fn id_and_epoch_map_minus_one_to_none() {
        assert_eq!(parse::<Id>("-1").unwrap(), Id(None));
        assert_eq!(parse::<Id>("\"1100000001\"").unwrap(), Id(Some(1100000001)));
        assert_eq!(parse::<EpochMs>("-1").unwrap(), EpochMs(None));
        assert_eq!(
            parse::<EpochMs>("\"1497871291351\"").unwrap(),
            EpochMs(Some(1497871291351))
        );
        assert_eq!(parse::<EpochMs>("\"undefined\"").unwrap(), EpochMs(None));
    }

    #[test]
    fn float_and_bool() {
        assert_eq!(parse::<Float>("\"11.7\"").unwrap(), Float(Some(11.7)));
        assert_eq!(parse::<Float>("4").unwrap(), Float(Some(4.0)));
        assert!(parse::<Float>("\"NaN\"").is_err());
        assert_eq!(parse::<Bool>("\"true\"").unwrap(), Bool(Some(true)));
        assert_eq!(parse::<Bool>("0").unwrap(), Bool(Some(false)));
        assert!(parse::<Bool>("\"maybe\"").is_err());
    }

    #[test]
    fn json_text_is_kept_as_sent_without_whitespace() {
        // Keys stay in the order sent, escapes and numbers as written; only the whitespace
        // between tokens goes, never inside a string (an escaped quote does not end one).
        let sent =
            "{ \"z\" : [1, 2.50 ,\"a b\"],\n\t\"a\":{\"q\":\"say \\\"hi\\\" \\u00e9\\\\\"} }";
        let compact = "{\"z\":[1,2.50,\"a b\"],\"a\":{\"q\":\"say \\\"hi\\\" \\u00e9\\\\\"}}";
        assert_eq!(compact_json(sent), compact);
        assert!(matches!(compact_json(compact), Cow::Borrowed(_)));
        // Text cut short inside a string (never from the parser, which checks it) is copied
        // as far as it goes, without a panic.
        assert_eq!(compact_json(" \"a b\\"), "\"a b\\");
        assert_eq!(compact_json("[ \"a"), "[\"a");
        assert_eq!(
            parse::<RawJson>(sent).unwrap(),
            RawJson(Some(compact.into()))
        );
        assert_eq!(parse::<RawJson>(" null ").unwrap(), RawJson(None));
        assert_eq!(
            parse::<RawJson>("\"undefined\"").unwrap(),
            RawJson(Some("\"undefined\"".into()))
        );
        // The same text from an already-parsed tree (which writes it compact).
        let tree: serde_json::Value = serde_json::from_str(compact).unwrap();
        assert_eq!(
            RawJson::deserialize(&tree).unwrap().0.unwrap(),
            tree.to_string()
        );
    }

    #[test]
    fn list_accepts_null_single_object_and_placeholder() {
        let v: Vec<Int> = list(&mut serde_json::Deserializer::from_str("null")).unwrap();
        assert!(v.is_empty());
        let v: Vec<Int> = list(&mut serde_json::Deserializer::from_str("[1,\"2\"]")).unwrap();
        assert_eq!(v, vec![Int(Some(1)), Int(Some(2))]);
        assert!(list::<_, Int>(&mut serde_json::Deserializer::from_str("\"x\"")).is_err());
    }
}
