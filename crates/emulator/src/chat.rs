//! Legacy chats for the Engagement History API (§4): their own time grid, engagement ids, the
//! cheap properties the EH filters look at, and the full `interactionHistoryRecords[]` record.
//!
//! Like conversations, chat `i` is a pure function of `(seed, i)`: it starts in slot `i` of a
//! grid `86_400_000 / chats_per_day` ms wide (from [`ORIGIN_MS`]), and its engagement id is the
//! account id followed by `4294967296 + i` (the shape of LivePerson's ids), so an id maps back
//! to its chat without storage. Records follow the vendor's shapes and quirks: `agentName` in
//! some records and `agentNickName` in others, `agentFullName` vs `agentFullname`, `lobId` as a
//! number or a string, `mcs` sometimes `null`, rich content as a JSON *object*, survey
//! `questionID`/`surveyID`, `lineSeq` missing from some transcripts, legacy SDE wrapper keys
//! (`viewProduct`, `formFillingError` with `{"string": ...}` values).

use std::ops::Range;

use serde_json::{Map, Value, json};

use crate::catalog::{
    AGENT_CLOSERS, AGENTS, Agent, CONSUMER_CLOSERS, DESTINATIONS, FIRST_NAMES, GROUPS,
    HUMAN_GREETINGS, PLACES, SKILLS, TOPICS, UNASSIGNED_ID, UNASSIGNED_NAME, UserType,
};
use crate::dataset::{Dataset, ORIGIN_MS, lp_time};
use crate::rng::{Rng, key};

const STREAM_CHAT_JITTER: u64 = 21;
const STREAM_CHAT_SKELETON: u64 = 22;
const STREAM_CHAT_DETAIL: u64 = 23;
const STREAM_CHAT_VISITOR: u64 = 24;

/// Engagement ids are the account id followed by this plus the chat's index.
const CHAT_ID_BASE: u64 = 4_294_967_296;

/// No chat lasts longer than this (start to end): chats starting this long before "now" have
/// certainly ended.
pub(crate) const MAX_CHAT_MS: i64 = 2 * 3600 * 1000;

/// The filterable properties of a chat.
#[derive(Debug, Clone)]
pub(crate) struct ChatSkeleton {
    /// Index into [`AGENTS`].
    pub agent: usize,
    /// Index into [`SKILLS`]; `None` is "Unassigned" (-1).
    pub skill: Option<usize>,
    pub interactive: bool,
    /// Seconds, as the EH API reports it.
    pub duration_s: i64,
    /// Index into [`TOPICS`].
    pub topic: usize,
}

impl ChatSkeleton {
    pub(crate) fn skill_id(&self) -> i64 {
        self.skill.map_or(UNASSIGNED_ID, |k| SKILLS[k].id)
    }

    pub(crate) fn agent_id(&self) -> &'static str {
        AGENTS[self.agent].id
    }

    pub(crate) fn agent_group_id(&self) -> i64 {
        GROUPS[AGENTS[self.agent].group].id
    }
}

impl Dataset {
    /// Epoch-ms start time of chat `index` (strictly increasing in index).
    pub fn chat_start_time_ms(&self, index: u64) -> i64 {
        let jitter = (key(self.seed, index, STREAM_CHAT_JITTER) % self.chat_spacing as u64) as i64;
        ORIGIN_MS
            .saturating_add(
                i64::try_from(index)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(self.chat_spacing),
            )
            .saturating_add(jitter)
    }

    /// Chat indices whose start time lies in the inclusive range `[from_ms, to_ms]`, ascending
    /// (ended or not: the EH search further drops chats that have not ended yet).
    pub fn chat_index_range(&self, from_ms: i64, to_ms: i64) -> Range<u64> {
        if to_ms < from_ms || to_ms < ORIGIN_MS {
            return 0..0;
        }
        let slot = |ms: i64| ((ms - ORIGIN_MS).max(0) / self.chat_spacing) as u64;
        let mut first = slot(from_ms);
        if self.chat_start_time_ms(first) < from_ms {
            first += 1;
        }
        let last = slot(to_ms);
        let end = if self.chat_start_time_ms(last) <= to_ms {
            last + 1
        } else {
            last
        };
        first..end.max(first)
    }

    /// The engagement id of chat `index`: the account id, then `4294967296 + index`.
    pub fn engagement_id(&self, index: u64) -> String {
        format!("{}{}", self.account_id, CHAT_ID_BASE.saturating_add(index))
    }

    /// The index of an engagement id made by [`Dataset::engagement_id`].
    pub fn chat_index_of(&self, engagement_id: &str) -> Option<u64> {
        let n: u64 = engagement_id
            .strip_prefix(self.account_id.as_str())?
            .parse()
            .ok()?;
        let index = n.checked_sub(CHAT_ID_BASE)?;
        (self.engagement_id(index) == engagement_id).then_some(index)
    }

    /// When chat `index` ended (epoch ms).
    pub fn chat_end_time_ms(&self, index: u64) -> i64 {
        let sk = self.chat_skeleton(index);
        self.chat_start_time_ms(index) + sk.duration_s * 1000 + end_ms_jitter(self, index)
    }

    /// The visitor id of chat `index` (22 lowercase letters, like LivePerson's).
    pub fn chat_visitor_id(&self, index: u64) -> String {
        let mut r = Rng::new(key(self.seed, index, STREAM_CHAT_VISITOR));
        (0..22)
            .map(|_| (b'a' + r.below(26) as u8) as char)
            .collect()
    }

    pub(crate) fn chat_skeleton(&self, index: u64) -> ChatSkeleton {
        let mut r = Rng::new(key(self.seed, index, STREAM_CHAT_SKELETON));
        let topic = r.below(TOPICS.len() as u64) as usize;
        let unassigned = r.chance(50);
        let skill = (!unassigned).then_some(TOPICS[topic].skill);
        let candidates: Vec<usize> = AGENTS
            .iter()
            .enumerate()
            .filter(|(_, a)| {
                a.user_type == UserType::Human
                    && !a.skills.is_empty()
                    && skill.is_none_or(|s| a.skills.contains(&s))
            })
            .map(|(i, _)| i)
            .collect();
        let agent = *r.pick(&candidates);
        let interactive = r.chance(930);
        let duration_s = if interactive {
            r.range(60, 1_800)
        } else {
            r.range(0, 90)
        };
        ChatSkeleton {
            agent,
            skill,
            interactive,
            duration_s,
            topic,
        }
    }

    /// The full EH record of chat `index` (§4.2).
    pub fn chat(&self, index: u64) -> Value {
        ChatBuilder::new(self, index).build()
    }
}

fn end_ms_jitter(d: &Dataset, index: u64) -> i64 {
    (key(d.seed, index, STREAM_CHAT_JITTER + 100) % 1000) as i64
}

struct ChatBuilder<'a> {
    d: &'a Dataset,
    index: u64,
    sk: ChatSkeleton,
    r: Rng,
    start: i64,
    end: i64,
    visitor_name: &'static str,
    agent: &'static Agent,
}

impl<'a> ChatBuilder<'a> {
    fn new(d: &'a Dataset, index: u64) -> Self {
        let sk = d.chat_skeleton(index);
        let start = d.chat_start_time_ms(index);
        let end = d.chat_end_time_ms(index);
        let mut r = Rng::new(key(d.seed, index, STREAM_CHAT_DETAIL));
        let visitor_name = if r.chance(600) {
            *r.pick(FIRST_NAMES)
        } else {
            "Visitor"
        };
        ChatBuilder {
            d,
            index,
            agent: &AGENTS[sk.agent],
            sk,
            r,
            start,
            end,
            visitor_name,
        }
    }

    fn pick_fill(&mut self, list: &'static [&'static str]) -> String {
        let template = *self.r.pick(list);
        self.fill(template)
    }

    fn fill(&mut self, template: &str) -> String {
        let (dest, _) = *self.r.pick(DESTINATIONS);
        let name = if self.visitor_name == "Visitor" {
            String::new()
        } else {
            format!(" {}", self.visitor_name)
        };
        template
            .replace("{flight}", &format!("TA {}", self.r.range(100, 2999)))
            .replace("{pnr}", &format!("Q{:05}", self.r.range(0, 99_999)))
            .replace("{dest}", dest)
            .replace("{date}", "next Tuesday")
            .replace("{bag}", &format!("TA{:06}", self.r.range(0, 999_999)))
            .replace("{miles}", &format!("{}", self.r.range(5, 120) * 1000))
            .replace(
                "{price}",
                &format!("{}.{:02}", self.r.range(19, 1400), self.r.range(0, 99)),
            )
            .replace("{member}", &format!("TA{:08}", self.r.range(0, 99_999_999)))
            .replace("{name}", &name)
            .replace("{agent}", self.agent.nickname)
    }

    fn build(mut self) -> Value {
        let d = self.d;
        let agent = self.agent;
        let topic = &TOPICS[self.sk.topic];
        let requested = self.start - self.r.range(2_000, 90_000);
        let with_seq = self.r.chance(800);
        let mut seq = self.r.range(1, 80);

        // ---- transcript ------------------------------------------------------------------
        let mut lines: Vec<Value> = Vec::new();
        let mut scores: Vec<Value> = Vec::new();
        let push = |line: Map<String, Value>, seq: &mut i64, lines: &mut Vec<Value>| {
            let mut line = line;
            if with_seq {
                line.insert("lineSeq".into(), seq.to_string().into());
            }
            *seq += 1;
            lines.push(Value::Object(line));
        };
        let system = |text: &str, control: i64, t: i64| {
            let mut l = Map::new();
            put_time(&mut l, "time", t);
            l.insert("controlType".into(), control.into());
            l.insert("text".into(), text.into());
            l.insert("by".into(), "info".into());
            l.insert("source".into(), "system".into());
            l.insert("subType".into(), "REGULAR".into());
            l.insert("textType".into(), "plain".into());
            l.insert("cannedAnswerType".into(), 0.into());
            l.insert("agentId".into(), 0.into());
            l
        };
        push(
            system(
                "Thanks for contacting Thrive Air. An agent will be with you shortly.",
                4,
                requested + 100,
            ),
            &mut seq,
            &mut lines,
        );
        push(
            system(
                &format!("You are now chatting with {}", agent.nickname),
                3,
                self.start,
            ),
            &mut seq,
            &mut lines,
        );
        let span = ((self.end - self.start) * 9 / 10).max(0);
        let turns = if self.sk.interactive {
            2 + self.r.below(7) as usize
        } else {
            0
        };
        let step = span / (2 * turns as i64 + 2);
        let mut t = self.start;
        let mut mcs_sum = 0i64;
        let mut scored = 0i64;
        // The greeting (often a canned answer).
        t += step;
        let greeting = self.pick_fill(HUMAN_GREETINGS);
        let canned = if self.r.chance(500) {
            self.r.range(1, 40)
        } else {
            0
        };
        push(
            self.agent_line(&greeting, "plain", canned, t),
            &mut seq,
            &mut lines,
        );
        for turn in 0..turns {
            t += step;
            let text = if turn == 0 {
                self.pick_fill(topic.openings)
            } else if turn + 1 == turns {
                (*self.r.pick(CONSUMER_CLOSERS)).to_string()
            } else {
                self.pick_fill(topic.follow_ups)
            };
            let mut l = Map::new();
            put_time(&mut l, "time", t);
            l.insert("controlType".into(), 0.into());
            l.insert("text".into(), text.into());
            l.insert("by".into(), self.visitor_name.into());
            l.insert("source".into(), "visitor".into());
            l.insert("subType".into(), "REGULAR".into());
            l.insert("textType".into(), "plain".into());
            l.insert("cannedAnswerType".into(), 0.into());
            l.insert("agentId".into(), 0.into());
            if with_seq {
                let raw = self.r.range(0, 100);
                mcs_sum += raw;
                scored += 1;
                scores.push(json!({"lineSeq": seq.to_string(), "lineRawScore": raw, "mcs": mcs_sum / scored}));
            }
            push(l, &mut seq, &mut lines);

            t += step;
            let line = if turn + 1 == turns {
                let text = self.pick_fill(AGENT_CLOSERS);
                self.agent_line(&text, "plain", 0, t)
            } else {
                match self.r.below(10) {
                    0 => self.rich_line(t),
                    1 => {
                        let url = format!("https://www.thriveair.example/help/{}", topic.skill + 1);
                        self.agent_line(&url, "url", 0, t)
                    }
                    2 => {
                        let text = self.pick_fill(topic.replies);
                        self.agent_line(&format!("<b>{text}</b>"), "html", 0, t)
                    }
                    3 => {
                        // A canned answer the agent edited: a negative id.
                        let text = self.pick_fill(topic.replies);
                        let id = -self.r.range(1, 40);
                        self.agent_line(&text, "plain", id, t)
                    }
                    _ => {
                        let text = self.pick_fill(topic.replies);
                        self.agent_line(&text, "plain", 0, t)
                    }
                }
            };
            push(line, &mut seq, &mut lines);
            if self.r.chance(60) {
                // A note only the agent sees.
                let mut note = system("Visitor is browsing the manage-booking pages", 0, t);
                note.insert("subType".into(), "ONLY_TO_REP".into());
                push(note, &mut seq, &mut lines);
            }
        }
        push(
            system("Thank you for chatting with Thrive Air.", 5, self.end),
            &mut seq,
            &mut lines,
        );
        let chat_mcs = if scored > 0 { mcs_sum / scored } else { 0 };
        let alerted = match chat_mcs {
            0..=33 => -1,
            34..=66 => 0,
            _ => 1,
        };

        // ---- surveys ---------------------------------------------------------------------
        let item = |source: &str,
                    name: &str,
                    question: &str,
                    answer: &str,
                    answer_id: i64,
                    at: i64,
                    qid: i64,
                    sid: i64| {
            json!({"scope": "Session", "source": source, "displayName": question, "value": answer,
                   "values": [answer], "answersId": [answer_id], "name": name,
                   "time": lp_time(at), "timeL": at, "questionID": qid, "surveyID": sid})
        };
        let mut pre = Vec::new();
        if self.r.chance(500) {
            let at = requested - self.r.range(1_000, 20_000);
            pre.push(item(
                "Pre-Chat",
                "Pre-chat survey",
                "Your name",
                self.visitor_name,
                -1,
                at,
                1,
                600_001,
            ));
            let reference = format!("Q{:05}", self.r.range(0, 99_999));
            pre.push(item(
                "Pre-Chat",
                "Pre-chat survey",
                "Booking reference (optional)",
                &reference,
                -1,
                at,
                2,
                600_001,
            ));
        }
        let mut post = Vec::new();
        if self.sk.interactive && self.r.chance(400) {
            let at = self.end + self.r.range(5_000, 60_000);
            let helpful = self.r.chance(750);
            post.push(item(
                "Exit",
                "Exit survey",
                "Was this chat helpful?",
                if helpful { "Yes" } else { "No" },
                if helpful { 1 } else { 2 },
                at,
                9,
                600_002,
            ));
            let score = self.r.range(1, 5);
            post.push(item(
                "Exit",
                "Exit survey",
                "How would you rate the agent?",
                &score.to_string(),
                score,
                at,
                10,
                600_002,
            ));
        }
        let mut operator = Vec::new();
        if self.sk.interactive && self.r.chance(300) {
            let at = self.end + self.r.range(1_000, 30_000);
            operator.push(item(
                "operator",
                "Agent wrap-up",
                "Category",
                topic.intent_label,
                self.sk.topic as i64 + 1,
                at,
                21,
                600_003,
            ));
        }

        // ---- info ------------------------------------------------------------------------
        let group = &GROUPS[agent.group];
        let (skill_id, skill_name) = self.sk.skill.map_or((UNASSIGNED_ID, UNASSIGNED_NAME), |k| {
            (SKILLS[k].id, SKILLS[k].name)
        });
        let mut info = Map::new();
        put_time(&mut info, "startTime", self.start);
        put_time(&mut info, "endTime", self.end);
        put_time(&mut info, "chatRequestedTime", requested);
        info.insert("duration".into(), self.sk.duration_s.into());
        info.insert("visitorId".into(), d.chat_visitor_id(self.index).into());
        info.insert("visitorName".into(), self.visitor_name.into());
        info.insert("engagementId".into(), d.engagement_id(self.index).into());
        info.insert(
            "sharkEngagementId".into(),
            format!(
                "{}_{:012x}_1",
                d.account_id,
                key(d.seed, self.index, 77) >> 16
            )
            .into(),
        );
        info.insert("isInteractive".into(), self.sk.interactive.into());
        if self.r.chance(500) {
            info.insert("interactive".into(), self.sk.interactive.into());
        }
        info.insert("ended".into(), true.into());
        info.insert("accountId".into(), d.account_id.clone().into());
        info.insert("agentId".into(), agent.id.into());
        // The examples name the nickname either way, and the full name with either case.
        let nick_key = if self.r.chance(500) {
            "agentNickName"
        } else {
            "agentName"
        };
        info.insert(nick_key.into(), agent.nickname.into());
        info.insert("agentLoginName".into(), agent.login.into());
        let full_key = if self.r.chance(800) {
            "agentFullName"
        } else {
            "agentFullname"
        };
        info.insert(full_key.into(), agent.full_name.into());
        info.insert("agentDeleted".into(), agent.deleted.into());
        info.insert("skillId".into(), skill_id.into());
        info.insert("skillName".into(), skill_name.into());
        info.insert("agentGroupId".into(), group.id.into());
        info.insert("agentGroupName".into(), group.name.into());
        info.insert("channel".into(), 1.into());
        info.insert("isAgentSurvey".into(), (!operator.is_empty()).into());
        info.insert("isPostChatSurvey".into(), (!post.is_empty()).into());
        info.insert("isPreChatSurvey".into(), (!pre.is_empty()).into());
        let transferred = self.r.chance(120);
        let (start_reason, start_desc) = if transferred {
            ("1", "Transfer (agent)")
        } else {
            ("0", "Visitor request")
        };
        info.insert("startReason".into(), start_reason.into());
        info.insert("startReasonDesc".into(), start_desc.into());
        let (end_reason, end_desc) = if !self.sk.interactive {
            ("208", "Visitor no longer in chat")
        } else {
            *self.r.pick(&[
                ("210", "Visitor closed chat"),
                ("201", "Rep stopped chat"),
                ("205", "Visitor disconnected"),
                ("202", "Rep disconnected"),
            ])
        };
        info.insert("endReason".into(), end_reason.into());
        info.insert("endReasonDesc".into(), end_desc.into());
        info.insert("engagementSet".into(), 0.into());
        info.insert("engagementSequence".into(), i64::from(transferred).into());
        // Deprecated; often null in the vendor's examples.
        let mcs: Value = if self.r.chance(300) {
            Value::Null
        } else {
            alerted.into()
        };
        info.insert("mcs".into(), mcs);
        info.insert("alertedMCS".into(), alerted.into());
        info.insert("chatMCS".into(), chat_mcs.into());
        info.insert(
            "chatStartUrl".into(),
            "https://www.thriveair.example/manage-booking".into(),
        );
        info.insert("chatStartPage".into(), "Manage booking | Thrive Air".into());
        info.insert("isPartial".into(), false.into());
        info.insert("chatDataEnriched".into(), self.r.chance(950).into());

        // ---- the rest --------------------------------------------------------------------
        let place = self.r.pick(PLACES);
        let (device, browser, browser_type, os) = *self.r.pick(&[
            ("DESKTOP", "Chrome 122.0", "CHROME", "WINDOWS"),
            ("DESKTOP", "Safari 17.3", "SAFARI", "MAC_OSX"),
            ("MOBILE", "Chrome 121.0", "CHROME", "ANDROID"),
            ("TABLET", "Safari 17.3", "SAFARI", "IOS"),
            ("DESKTOP", "Firefox 123.0", "FIREFOX", "LINUX"),
        ]);
        let ip = format!("198.51.100.{}", key(d.seed, self.index, 78) % 254 + 1);
        let visitor_info = json!({
            "country": place.country, "countryCode": place.code, "state": place.state,
            "city": place.city, "isp": place.isp, "org": if self.r.chance(500) { place.isp } else { "" },
            "device": device, "ipAddress": ip, "browser": browser,
            "operatingSystem": os, "browserType": browser_type,
        });
        // `lobId` is a number in one vendor example and a string in another.
        let lob_id: Value = match self.r.below(3) {
            0 => (-1).into(),
            1 => "-1".into(),
            _ => 3_300_000_061i64.into(),
        };
        let lob_name = if lob_id.as_i64() == Some(3_300_000_061) {
            "Customer service"
        } else {
            "NA"
        };
        let campaign = json!({
            "campaignEngagementId": "3300000014", "campaignEngagementName": "Live chat – Help pages",
            "campaignId": "3300000004", "campaignName": "Live chat on the website",
            "goalId": "3300000031", "goalName": "Interact with visitors",
            "engagementAgentNote": if self.r.chance(200) { "Check the booking first" } else { "" },
            "visitorBehaviorId": "3300000041", "visitorBehaviorName": "Any behavior",
            "visitorProfileId": "3300000051", "visitorProfileName": "All visitors",
            "lobId": lob_id, "lobName": lob_name,
        });
        let mut cobrowse = Vec::new();
        if self.sk.interactive && self.r.chance(40) {
            let s = self.start + (self.end - self.start) / 3;
            let e = (s + self.r.range(20_000, 300_000)).min(self.end);
            cobrowse.push(json!({
                "sessionId": format!("{}:{}__{}", d.account_id, agent.id, d.engagement_id(self.index)),
                "startTime": lp_time(s), "startTimeL": s, "endTime": lp_time(e), "endTimeL": e,
                "interactiveTime": lp_time(s), "interactiveTimeL": s,
                "endReason": *self.r.pick(&["AGENT", "VISITOR", "TIMEOUT"]),
                "duration": e - s, "interactive": true,
            }));
        }

        let mut rec = Map::new();
        rec.insert("info".into(), Value::Object(info));
        rec.insert("campaign".into(), campaign);
        rec.insert("transcript".into(), json!({ "lines": lines }));
        if !scores.is_empty() {
            rec.insert("lineScores".into(), Value::Array(scores));
        }
        rec.insert("visitorInfo".into(), visitor_info);
        rec.insert(
            "surveys".into(),
            json!({"preChat": pre, "postChat": post, "operator": operator}),
        );
        rec.insert(
            "coBrowseSessions".into(),
            json!({ "coBrowseSessionsList": cobrowse }),
        );
        if let Some(sdes) = self.sdes(requested) {
            rec.insert("sdes".into(), sdes);
        }
        Value::Object(rec)
    }

    fn agent_line(
        &mut self,
        text: &str,
        text_type: &str,
        canned: i64,
        t: i64,
    ) -> Map<String, Value> {
        let mut l = Map::new();
        put_time(&mut l, "time", t);
        l.insert("controlType".into(), 0.into());
        l.insert("text".into(), text.into());
        l.insert("by".into(), self.agent.nickname.into());
        l.insert("source".into(), "agent".into());
        l.insert("subType".into(), "REGULAR".into());
        l.insert("textType".into(), text_type.into());
        l.insert("cannedAnswerType".into(), canned.into());
        // A number here, while `info.agentId` is a string (vendor examples).
        l.insert(
            "agentId".into(),
            self.agent.id.parse::<i64>().unwrap_or(0).into(),
        );
        l
    }

    /// Rich content: in EH a JSON object under `json` (not a string, unlike MI).
    fn rich_line(&mut self, t: i64) -> Map<String, Value> {
        let (dest, code) = *self.r.pick(DESTINATIONS);
        let mut l = self.agent_line("", "rich-content", 0, t);
        l.remove("text");
        l.insert(
            "json".into(),
            json!({"type": "vertical", "elements": [
                {"type": "image", "url": format!("https://media.thriveair.example/destinations/{}.jpg", code.to_lowercase()),
                 "tooltip": dest},
                {"type": "text", "text": format!("Flights to {dest}"), "style": {"bold": true}},
                {"type": "button", "title": "Book now",
                 "click": {"actions": [{"type": "link", "name": "Book now",
                                        "uri": "https://www.thriveair.example/book"}]}}
            ]}),
        );
        l
    }

    /// Engagement attributes: current wrappers (with `sdeType`, `isAuthenticated`) or, in some
    /// older records, the legacy ones (`viewProduct`, `formFillingError`, `{"string": ...}`).
    fn sdes(&mut self, requested: i64) -> Option<Value> {
        if !self.r.chance(500) {
            return None;
        }
        let legacy = self.r.chance(200);
        let server = requested + self.r.range(0, 5_000);
        let original = requested - self.r.range(0, 60_000);
        let (s, o) = (server.to_string(), original.to_string());
        let (dest, code) = *self.r.pick(DESTINATIONS);
        let fare = format!("{}.{:02}", self.r.range(19, 1400), self.r.range(0, 99));
        let mut events = Vec::new();
        let wrap = |key: &str, payload: Value, sde_type: &str, legacy: bool| {
            if legacy {
                json!({ key: payload })
            } else {
                json!({key: payload, "sdeType": sde_type, "serverTimeStamp": s, "isAuthenticated": false})
            }
        };
        events.push(wrap(
            "cartStatus",
            json!({"serverTimeStamp": s, "originalTimeStamp": o, "total": fare, "currency": "GBP",
                   "numItems": "1",
                   "products": [{"quantity": "1", "product": {"name": format!("Flight LHR-{code}"),
                                 "category": "flights", "sku": format!("LHR-{code}"), "price": fare}}]}),
            "CART_STATUS",
            legacy,
        ));
        if self.r.chance(500) {
            events.push(wrap(
                "customerInfo",
                json!({"serverTimeStamp": s, "originalTimeStamp": o,
                       "customerInfo": {"customerStatus": "active", "customerType": *self.r.pick(&["gold", "silver", "blue"]),
                                        "balance": format!("{}.00", self.r.range(0, 90) * 1000),
                                        "customerId": format!("TA{:08}", self.r.range(0, 99_999_999)),
                                        "registrationDate": {"year": "2016", "month": "4", "day": "12"}}}),
                "CUSTOMER_INFO",
                legacy,
            ));
        }
        if legacy {
            events.push(json!({"viewProduct": {"serverTimeStamp": s, "originalTimeStamp": o,
                "products": [{"quantity": null, "product": {"name": format!("London → {dest}"),
                              "category": "flights", "sku": format!("LHR-{code}"), "price": fare}}]}}));
            events.push(json!({"formFillingError": {"serverTimeStamp": s, "originalTimeStamp": o,
                "visitorError": {"contextId": "payment", "message": {"string": "Expiration date missing"},
                                 "code": {"string": "er100004"}, "level": "2", "resolved": "true"}}}));
        } else if self.r.chance(300) {
            events.push(wrap(
                "purchase",
                json!({"total": fare, "currency": "GBP", "serverTimeStamp": s, "originalTimeStamp": o,
                       "orderId": format!("Q{:05}", self.r.range(0, 99_999)),
                       "cart": {"total": null, "serverTimeStamp": null, "originalTimeStamp": null,
                                "products": [], "numItems": null}}),
                "PURCHASE",
                false,
            ));
        }
        Some(json!({ "events": events }))
    }
}

fn put_time(obj: &mut Map<String, Value>, name: &str, ms: i64) {
    obj.insert(name.to_string(), lp_time(ms).into());
    obj.insert(format!("{name}L"), ms.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmulatorConfig;

    fn dataset() -> Dataset {
        Dataset::new(&EmulatorConfig::default())
    }

    #[test]
    fn engagement_ids_round_trip() {
        let d = dataset();
        for i in [0u64, 1, 77, 123_456] {
            let id = d.engagement_id(i);
            assert!(id.starts_with("12345678"));
            assert_eq!(d.chat_index_of(&id), Some(i));
        }
        assert_eq!(d.chat_index_of("123456784294967295"), None);
        assert_eq!(d.chat_index_of("99999999"), None);
        assert_eq!(d.chat_index_of("qa844815054294982965"), None);
    }

    #[test]
    fn chat_ranges_are_exact() {
        let d = dataset();
        let from = ORIGIN_MS + 3 * 86_400_000 + 12_345;
        let to = from + 86_400_000;
        let range = d.chat_index_range(from, to);
        assert!(!range.is_empty());
        for i in range.clone() {
            let t = d.chat_start_time_ms(i);
            assert!(from <= t && t <= to);
        }
        assert!(d.chat_start_time_ms(range.start - 1) < from);
        assert!(d.chat_start_time_ms(range.end) > to);
    }

    #[test]
    fn records_are_deterministic_and_consistent() {
        let d = dataset();
        for i in 0..300 {
            let c = d.chat(i);
            assert_eq!(c, d.chat(i));
            let info = &c["info"];
            assert_eq!(info["engagementId"], d.engagement_id(i));
            let start = info["startTimeL"].as_i64().unwrap();
            let end = info["endTimeL"].as_i64().unwrap();
            assert_eq!(start, d.chat_start_time_ms(i));
            assert_eq!(end, d.chat_end_time_ms(i));
            assert!(end >= start && end - start <= MAX_CHAT_MS);
            assert_eq!(
                info["duration"].as_i64().unwrap(),
                d.chat_skeleton(i).duration_s
            );
            let requested = info["chatRequestedTimeL"].as_i64().unwrap();
            for line in c["transcript"]["lines"].as_array().unwrap() {
                let t = line["timeL"].as_i64().unwrap();
                assert!(requested <= t && t <= end, "chat {i}: line at {t}");
            }
            assert_eq!(info["skillId"], d.chat_skeleton(i).skill_id());
        }
    }
}
