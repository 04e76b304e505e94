//! Durations as people write them: one grammar for every flag and key.

use std::fmt;
use std::str::FromStr;

/// Parses a duration: a number and a unit (`ms`, `s`, `m`, `h`, `d`, and the longer names
/// humantime knows), several of them added up (`1h 30m`). A bare number is refused: the unit
/// is what tells `--lease 60` (seconds?) from `--poll 60` (minutes?).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let trimmed = text.trim();
    humantime::parse_duration(trimmed).map_err(|e| {
        format!("{text:?} is not a duration ({e}): use a number and a unit, e.g. 250ms, 90s, 5m, 24h or 7d")
    })
}

/// A duration setting: parses with [`parse_duration`], prints as it would be written
/// (`1h 30m`), so a clap flag or a config key can be typed with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Duration)
    }
}

impl fmt::Display for Duration {
    /// In the grammar's own short units (`7d`, `1h 30m`, `250ms`), so that what is printed
    /// reads the way it is typed and parses back (humantime's own format says `1day`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.subsec_nanos().is_multiple_of(1_000_000) {
            return write!(f, "{}", humantime::format_duration(self.0));
        }
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        let mut parts = Vec::new();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= size {
                parts.push(format!("{}{unit}", ms / size));
                ms %= size;
            }
        }
        f.write_str(&parts.join(" "))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as D;

    #[test]
    fn one_grammar_for_every_unit() {
        for (text, want) in [
            ("250ms", D::from_millis(250)),
            ("90s", D::from_secs(90)),
            ("5m", D::from_secs(300)),
            ("24h", D::from_secs(86_400)),
            ("7d", D::from_secs(7 * 86_400)),
            ("1h 30m", D::from_secs(5_400)),
            (" 2s ", D::from_secs(2)),
            ("0s", D::ZERO),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for text in ["", "60", "-5s", "5 parsecs", "s", "1.5.2s"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("is not a duration"), "{text}: {err}");
        }
    }

    #[test]
    fn prints_as_written() {
        assert_eq!("1h 30m".parse::<Duration>().unwrap().to_string(), "1h 30m");
        assert_eq!("250ms".parse::<Duration>().unwrap().to_string(), "250ms");
        for (text, shown) in [
            ("24h", "1d"),
            ("7d", "7d"),
            ("90s", "1m 30s"),
            ("0s", "0s"),
            ("1d 2h 3m 4s 5ms", "1d 2h 3m 4s 5ms"),
        ] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<Duration>().unwrap(), d, "{shown} parses back");
        }
    }
}
