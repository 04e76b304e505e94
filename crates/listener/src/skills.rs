//! `--skill`: only conversations routed to the given skills are kept.
//!
//! A conversation's skill comes from its conversation-change notifications, which may arrive
//! after its first messages (and in another roll). So a notification is published once one of
//! its conversations is known to be routed to a kept skill; dropped once all of them are known
//! not to be (closed without ever reaching one); and held, for at most the hold time, while
//! that is not known yet. A conversation transferred into a kept skill is kept from then on,
//! with everything held of it.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use lpdrop_liveperson::webhook::notification::{Change, ConversationChange, decode};

/// The skills to keep, and how long a notification may wait for its conversation's skill.
#[derive(Debug, Clone)]
pub struct SkillFilter {
    pub skills: BTreeSet<String>,
    pub hold: Duration,
}

/// What is known of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Routed to a kept skill at some point: every event of it is kept.
    Keep,
    /// Closed without ever being routed to a kept skill.
    Drop,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Keep => "keep",
            Decision::Drop => "drop",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep" => Some(Decision::Keep),
            "drop" => Some(Decision::Drop),
            _ => None,
        }
    }
}

/// What happens to one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Publish,
    /// Every conversation of it is known not to be routed to a kept skill.
    Discard,
    /// Its conversations' skill is not known yet.
    Hold,
    /// Held for longer than the hold time: its skill never became known.
    Expired,
}

/// Decisions known so far, and those learnt in this roll (to record).
#[derive(Debug, Default)]
pub struct Decisions {
    known: HashMap<String, Decision>,
    pub learnt: Vec<(String, Decision)>,
}

impl Decisions {
    pub fn new(known: HashMap<String, Decision>) -> Self {
        Decisions {
            known,
            learnt: Vec::new(),
        }
    }

    fn set(&mut self, conversation: &str, decision: Decision) {
        if self.known.get(conversation) != Some(&decision) {
            self.known.insert(conversation.to_string(), decision);
            self.learnt.push((conversation.to_string(), decision));
        }
    }

    /// Learns from a conversation change: a kept skill keeps the conversation for good; a
    /// close without one drops it.
    pub fn learn(&mut self, filter: &SkillFilter, change: &ConversationChange) {
        let id = change.conversation_id.as_str();
        if self.known.get(id) == Some(&Decision::Keep) {
            return;
        }
        if change
            .skill_id
            .as_ref()
            .is_some_and(|s| filter.skills.contains(s))
        {
            self.set(id, Decision::Keep);
        } else if change.is_closed() {
            self.set(id, Decision::Drop);
        }
    }

    /// Learns from every conversation change of a notification body.
    pub fn learn_from(&mut self, filter: &SkillFilter, body: &[u8]) {
        if let Ok(n) = decode(body) {
            for (change, _) in &n.changes {
                if let Ok(Change::Conversation(c)) = change {
                    self.learn(filter, c);
                }
            }
        }
    }

    /// The verdict on a notification received at `received_ms`, at `now_ms`. A body that is
    /// not a readable notification is published (to quarantine): it must not be lost.
    pub fn verdict(
        &self,
        filter: &SkillFilter,
        body: &[u8],
        received_ms: i64,
        now_ms: i64,
    ) -> Verdict {
        let Ok(n) = decode(body) else {
            return Verdict::Publish;
        };
        let mut undecided = false;
        let mut any = false;
        for (change, _) in &n.changes {
            let id = match change {
                Ok(Change::Messaging(m)) => &m.conversation_id,
                Ok(Change::Conversation(c)) => &c.conversation_id,
                Err(_) => return Verdict::Publish,
            };
            any = true;
            match self.known.get(id.as_str()) {
                Some(Decision::Keep) => return Verdict::Publish,
                Some(Decision::Drop) => {}
                None => undecided = true,
            }
        }
        if !any {
            return Verdict::Publish;
        }
        if !undecided {
            return Verdict::Discard;
        }
        if now_ms - received_ms > filter.hold.as_millis() as i64 {
            Verdict::Expired
        } else {
            Verdict::Hold
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, skill: &str, state: &str, ts: i64) -> Vec<u8> {
        format!(
            r#"{{"kind":"notification","type":"cqm.ExConversationChangeNotification","body":{{"changes":[{{"type":"UPSERT","result":{{"convId":"{id}","conversationDetails":{{"skillId":"{skill}","state":"{state}","metaDataLastUpdateTs":{ts}}}}}}}]}}}}"#
        )
        .into_bytes()
    }

    fn message(id: &str) -> Vec<u8> {
        format!(
            r#"{{"kind":"notification","type":"ms.MessagingEventNotification","body":{{"changes":[{{"sequence":0,"event":{{"type":"ContentEvent","message":"hi"}},"dialogId":"{id}"}}]}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn held_until_routed_kept_for_good_dropped_when_closed_elsewhere() {
        let filter = SkillFilter {
            skills: ["7".to_string()].into(),
            hold: Duration::from_secs(60),
        };
        let mut d = Decisions::default();
        assert_eq!(d.verdict(&filter, &message("a"), 0, 1), Verdict::Hold);
        assert_eq!(
            d.verdict(&filter, &message("a"), 0, 61_000),
            Verdict::Expired
        );
        d.learn_from(&filter, &change("a", "-1", "OPEN", 1));
        assert_eq!(d.verdict(&filter, &message("a"), 0, 1), Verdict::Hold);
        d.learn_from(&filter, &change("a", "7", "OPEN", 2));
        assert_eq!(d.verdict(&filter, &message("a"), 0, 1), Verdict::Publish);
        // Transferred away and closed: still kept.
        d.learn_from(&filter, &change("a", "8", "CLOSE", 3));
        assert_eq!(d.verdict(&filter, &message("a"), 0, 1), Verdict::Publish);
        d.learn_from(&filter, &change("b", "8", "CLOSE", 3));
        assert_eq!(d.verdict(&filter, &message("b"), 0, 1), Verdict::Discard);
        assert_eq!(
            d.verdict(&filter, &change("b", "8", "CLOSE", 3), 0, 1),
            Verdict::Discard
        );
        assert_eq!(
            d.learnt,
            vec![
                ("a".to_string(), Decision::Keep),
                ("b".to_string(), Decision::Drop)
            ]
        );
        assert_eq!(d.verdict(&filter, b"not json", 0, 1), Verdict::Publish);
    }
}
