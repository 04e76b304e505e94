//! Which LivePerson API a drop's records come from: one type for the flag, the queue, the
//! tables and the manifest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which LivePerson API a drop (and a job) reads. A drop holds the tables of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Messaging Interactions (`msgHist`): conversations.
    Messaging,
    /// Engagement History (`engHistDomain`): legacy chats.
    Chat,
    /// Account configuration (`accountConfigReadOnly`): agents, skills, agent groups.
    Dimensions,
    /// Connector API webhooks received by `lpdrop listen`: not a batch API, so no flag or job
    /// names it (see [`Source::BATCH`]).
    Webhooks,
}

impl Source {
    /// Every source: what the tables, schema files and DDL cover.
    pub const ALL: [Source; 4] = [
        Source::Messaging,
        Source::Chat,
        Source::Dimensions,
        Source::Webhooks,
    ];
    /// The sources a `sync`, a job or a schedule reads through the batch APIs.
    pub const BATCH: [Source; 3] = [Source::Messaging, Source::Chat, Source::Dimensions];

    /// The name in the `--source` flag, the queue, schema files and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Messaging => "messaging",
            Source::Chat => "chat",
            Source::Dimensions => "dimensions",
            Source::Webhooks => "webhooks",
        }
    }
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| {
                format!("unknown source {s:?}: use messaging, chat, dimensions or webhooks")
            })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "clap")]
impl clap::ValueEnum for Source {
    fn value_variants<'a>() -> &'a [Self] {
        // `--source` picks a batch API; webhooks arrive through `lpdrop listen` instead.
        &Source::BATCH
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self {
            Source::Messaging => "Messaging Interactions: conversations",
            Source::Chat => "Engagement History: legacy chats",
            Source::Dimensions => "account configuration: agents, skills, agent groups",
            Source::Webhooks => "Connector API webhooks (lpdrop listen)",
        };
        Some(clap::builder::PossibleValue::new(self.as_str()).help(help))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for source in Source::ALL {
            assert_eq!(source.as_str().parse::<Source>(), Ok(source));
            assert_eq!(
                serde_json::to_string(&source).ok(),
                Some(format!("\"{source}\""))
            );
        }
        assert!("Messaging".parse::<Source>().is_err());
    }
}
