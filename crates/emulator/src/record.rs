//! Builds one full Messaging Interactions conversation record (§3.7 of the API notes).
//!
//! The record copies the vendor's shapes *and* quirks on purpose, because the client must
//! survive them against the real service: ids that are strings in one place and numbers in
//! another (`latestAgentId` vs `latestSkillId`), `"undefined"` and `"null"` placeholder
//! strings, SDE numbers sent as strings, `csatRate` in some records and `csat` in others,
//! `"Consumer"`/`"Agent"` capitalised, and rich content as a JSON document inside a string.
//!
//! Generation first lays out a timeline (messages, assignments, transfers, close, survey)
//! from the conversation's skeleton, then renders every node from it, so that all the child
//! times agree with each other and lie within the conversation's `[start, end]`.

use serde_json::{Map, Value, json};

use crate::catalog::{
    AGENT_CLOSERS, AGENTS, Agent, BOT_GREETINGS, BOT_HANDOFFS, CONSUMER_CLOSERS, DESTINATIONS,
    FIRST_NAMES, GROUPS, HUMAN_GREETINGS, LAST_NAMES, PLACES, Place, SKILLS, SURVEY_FREE_TEXT,
    TOPICS, Topic, UNASSIGNED_ID, UNASSIGNED_NAME, UserType,
};
use crate::dataset::{Dataset, STREAM_DETAIL, Segment, Skeleton, lp_time};
use crate::rng::{Rng, key};

// Salts for the secondary UUIDs of a conversation.
const SALT_CONSUMER: u64 = 1;
const SALT_SURVEY_DIALOG: u64 = 2;
const SALT_SESSION: u64 = 3;
const SALT_AGENT_SURVEY: u64 = 4;

/// The hash stream of values added after the first release of the data set (agent pids,
/// consumer tokens, the rarer SDE fields, ...). Drawing them from their own stream keeps every
/// value drawn from [`STREAM_DETAIL`] byte-identical to what it was: records only gain keys.
const STREAM_EXTRA: u64 = 0x5DE5;

/// The hash stream of the vendor's rarer nodes added next (skill changes, link and
/// secure-form messages, a message's device). Its own stream for the same reason as
/// [`STREAM_EXTRA`]: a record without these nodes is byte-identical to what it was, and one
/// with them differs only where they are.
const STREAM_RARE: u64 = 0x5DE6;

/// Per mille of the agent replies that could carry anything (not a greeting, hand-off,
/// goodbye or card) sent as a link to a document instead of text.
const LINK_PER_MILLE: u64 = 25;

/// Per mille of a human agent's plain replies that invite the consumer to a secure form.
const SECURE_FORM_PER_MILLE: u64 = 12;

/// Per mille of the conversations with a skill move whose `skillChanges` lists them; the
/// others send it empty, as both vendor examples do.
const SKILL_CHANGES_PER_MILLE: u64 = 100;

/// Per mille of the conversations whose consumer messages carry the consumer's device in the
/// (deprecated) `device` field; the rest send the vendor examples' "undefined".
const MESSAGE_DEVICE_PER_MILLE: u64 = 150;

/// Documents an agent sends as link content: `(externalFileLink, fileType, caption)`.
const LINKS: &[(&str, &str, &str)] = &[
    (
        "https://www.thriveair.example/docs/conditions-of-carriage.pdf",
        "PDF",
        "Conditions of carriage",
    ),
    (
        "https://www.thriveair.example/docs/baggage-claim-form.pdf",
        "PDF",
        "Baggage claim form",
    ),
    (
        "https://www.thriveair.example/docs/refund-policy.pdf",
        "PDF",
        "Refunds and compensation",
    ),
    (
        "https://media.thriveair.example/guides/cabin-bag-sizes.png",
        "PNG",
        "Cabin bag sizes",
    ),
];

/// Secure forms an agent invites the consumer to: `(formId, formName)`.
const SECURE_FORMS: &[(&str, &str)] = &[
    ("4800000101", "Payment card details"),
    ("4800000102", "Passport details"),
];

const SOURCES: &[&str] = &[
    "APP",
    "SHARK",
    "SMS",
    "FACEBOOK",
    "WhatsApp Business",
    "Apple Business Chat",
];
const SOURCE_WEIGHTS: &[u64] = &[30, 35, 8, 7, 12, 8];

impl Dataset {
    /// The full MI record of conversation `index`: every node of §3.7 the emulator supports,
    /// `monitoring`, `unAuthSdes` and the agent surveys included. The server trims it to what
    /// a request asked for.
    pub fn conversation(&self, index: u64) -> Value {
        Builder::new(self, index).build()
    }
}

/// One message on the timeline.
struct Msg {
    seq: usize,
    time: i64,
    consumer: bool,
    /// The assignment segment in force when it was sent (`None` before the first agent).
    segment: Option<usize>,
}

/// Values substituted into the phrase templates, fixed per conversation.
struct Vars {
    flight: String,
    pnr: String,
    dest: &'static str,
    dest_code: &'static str,
    date: String,
    bag: String,
    miles: String,
    price: String,
    member: String,
}

struct Consumer {
    id: String,
    first: Option<&'static str>,
    last: Option<&'static str>,
}

struct Builder<'a> {
    d: &'a Dataset,
    index: u64,
    id: String,
    start: i64,
    sk: Skeleton,
    topic: &'static Topic,
    r: Rng,
    /// Draws for the fields added later (see [`STREAM_EXTRA`]).
    x: Rng,
    /// Draws for the rarer nodes (see [`STREAM_RARE`]).
    rare: Rng,
    vars: Vars,
    consumer: Consumer,
    source: &'static str,
    place: &'static Place,
}

impl<'a> Builder<'a> {
    fn new(d: &'a Dataset, index: u64) -> Self {
        let sk = d.skeleton(index);
        let topic = &TOPICS[sk.topic];
        let mut r = Rng::new(key(d.seed, index, STREAM_DETAIL));
        let start = d.start_time_ms(index);
        let (dest, dest_code) = *r.pick(DESTINATIONS);
        let flight_day = start + r.range(1, 60) * 86_400_000;
        let vars = Vars {
            flight: format!("TA {}", r.range(100, 2999)),
            pnr: (0..6)
                .map(|_| *r.pick(&b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[..]) as char)
                .collect(),
            dest,
            dest_code,
            date: chrono::DateTime::from_timestamp_millis(flight_day)
                .map(|t| t.format("%-d %B").to_string())
                .unwrap_or_default(),
            bag: format!("TA{:06}", r.range(0, 999_999)),
            miles: format!("{}", r.range(5, 120) * 1000),
            price: format!("{}.{:02}", r.range(19, 1400), r.range(0, 99)),
            member: format!("TA{:08}", r.range(0, 99_999_999)),
        };
        // Just over half the consumers are known by name; the rest are LivePerson's
        // "undefined" placeholders.
        let named = r.chance(550);
        let consumer = Consumer {
            id: d.derived_uuid(index, SALT_CONSUMER),
            first: named.then(|| *r.pick(FIRST_NAMES)),
            last: named.then(|| *r.pick(LAST_NAMES)),
        };
        let source = SOURCES[r.weighted(SOURCE_WEIGHTS)];
        let place = r.pick(PLACES);
        Builder {
            d,
            index,
            id: d.conversation_id(index),
            start,
            sk,
            topic,
            r,
            x: Rng::new(key(d.seed, index, STREAM_EXTRA)),
            rare: Rng::new(key(d.seed, index, STREAM_RARE)),
            vars,
            consumer,
            source,
            place,
        }
    }

    fn fill(&self, template: &str, agent: Option<&Agent>) -> String {
        let name = self
            .consumer
            .first
            .map(|f| format!(" {f}"))
            .unwrap_or_default();
        template
            .replace("{flight}", &self.vars.flight)
            .replace("{pnr}", &self.vars.pnr)
            .replace("{dest}", self.vars.dest)
            .replace("{date}", &self.vars.date)
            .replace("{bag}", &self.vars.bag)
            .replace("{miles}", &self.vars.miles)
            .replace("{price}", &self.vars.price)
            .replace("{member}", &self.vars.member)
            .replace("{name}", &name)
            .replace("{agent}", agent.map_or("", |a| a.nickname))
    }

    /// A phrase from `list` with the conversation's values filled in.
    fn pick_fill(&mut self, list: &'static [&'static str]) -> String {
        let template = *self.r.pick(list);
        self.fill(template, None)
    }

    fn build(mut self) -> Value {
        let d = self.d;
        let id = self.id.clone();
        let start = self.start;
        let segs = self.sk.segments.len();
        let open = self.sk.open;

        // ---- Timeline -------------------------------------------------------------------
        let join = start + self.r.range(15, 400);
        let n = 2 + self.r.below(19) as usize;
        let agent_msgs = n / 2;
        // Segment k > 0 begins (by a transfer) just before agent message `due(k)`; spreading
        // the transfers over the agent messages gives every agent something to say when
        // there are enough messages, and pushes the rest past the last message otherwise.
        let due = |k: usize| {
            if k == 0 {
                0
            } else {
                (k * agent_msgs / segs).max(1)
            }
        };
        let mut cursor = join;
        let mut assigned = vec![0i64; segs];
        let mut transfer_at: Vec<Option<i64>> = vec![None; segs];
        let mut current: Option<usize> = None;
        let mut next_seg = 0;
        let mut msgs: Vec<Msg> = Vec::with_capacity(n);
        for seq in 0..n {
            if seq % 2 == 0 {
                cursor += if seq == 0 {
                    self.r.range(300, 6_000)
                } else {
                    self.r.range(8_000, 150_000)
                };
                msgs.push(Msg {
                    seq,
                    time: cursor,
                    consumer: true,
                    segment: current,
                });
            } else {
                while next_seg < segs && due(next_seg) <= seq / 2 {
                    self.start_segment(next_seg, &mut cursor, &mut assigned, &mut transfer_at);
                    current = Some(next_seg);
                    next_seg += 1;
                }
                cursor += self.r.range(2_000, 50_000);
                msgs.push(Msg {
                    seq,
                    time: cursor,
                    consumer: false,
                    segment: current,
                });
            }
        }
        while next_seg < segs {
            self.start_segment(next_seg, &mut cursor, &mut assigned, &mut transfer_at);
            next_seg += 1;
        }
        let last_activity = cursor;
        let conv_end = (!open).then(|| last_activity + self.r.range(5_000, 180_000));
        let has_survey = !open && self.r.chance(400);
        let survey_window = match (has_survey, conv_end) {
            (true, Some(e)) => {
                let s = e + self.r.range(100, 900);
                Some((s, s + self.r.range(20_000, 300_000)))
            }
            _ => None,
        };
        let end = survey_window.map(|w| w.1).or(conv_end);
        // Receipts and scores computed after the close are clamped to it.
        let clamp = |t: i64| conv_end.map_or(t, |e| t.min(e));

        let latest = self.sk.latest();
        let latest_agent = &AGENTS[latest.agent];
        let (latest_skill_id, latest_skill_name) = skill_of(latest.skill);
        let latest_group = &GROUPS[latest_agent.group];

        // ---- messageRecords, messageStatuses, messageScores --------------------------------
        let mut records = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(2 * n);
        let mut scores = Vec::new();
        let mut scored = 0i64;
        let mut score_sum = 0i64;
        let mut mcs = 0i64;
        let mut greeted = vec![false; segs];
        // A secure form the consumer was invited to and has not submitted yet.
        let mut invited: Option<Value> = None;
        let mut secure_forms = false;
        for m in &msgs {
            let seg = m.segment.unwrap_or(0);
            let agent = &AGENTS[self.sk.segments[seg].agent];
            // Goodbyes only where there was room for a real exchange first.
            let closing = !open && n >= 6 && m.seq + 2 >= n;
            let mut rec = Map::new();
            let first = !m.consumer && !greeted[seg];
            let handing_off = !m.consumer && seg + 1 < segs && agent.user_type == UserType::Bot;
            let (mut kind, mut data, context) = if m.consumer {
                let normal = self.consumer_message(m.seq, closing);
                // The consumer fills in the form they were just invited to.
                match invited.take() {
                    Some(form) if !closing => {
                        let (k, d) = self.secure_form_submit(form);
                        (k, d, normal.2)
                    }
                    _ => normal,
                }
            } else {
                greeted[seg] = true;
                self.agent_message(agent, first, closing, handing_off)
            };
            // The rarer content replaces an ordinary reply after it was drawn, so that every
            // other draw of the conversation stays what it was.
            let ordinary = kind == "TEXT_PLAIN"
                && !(first || closing || handing_off)
                && data.get("quickReplies").is_none();
            if !m.consumer && ordinary {
                if agent.user_type == UserType::Human
                    && m.seq + 1 < n
                    && self.rare.chance(SECURE_FORM_PER_MILLE)
                {
                    let form = self.secure_form_invitation();
                    invited = Some(form["secureForm"].clone());
                    secure_forms = true;
                    (kind, data) = ("SECURE_FORM_INVITATION", form);
                } else if self.rare.chance(LINK_PER_MILLE) {
                    (kind, data) = ("LINK", self.link());
                }
            }
            rec.insert("type".into(), kind.into());
            rec.insert("messageData".into(), data);
            rec.insert("messageId".into(), message_id(&id, m.seq).into());
            rec.insert("seq".into(), m.seq.into());
            rec.insert("dialogId".into(), id.clone().into());
            let sender = if m.consumer {
                self.consumer.id.clone()
            } else {
                agent.id.to_string()
            };
            rec.insert("participantId".into(), sender.into());
            rec.insert("source".into(), self.source.into());
            put_time(&mut rec, "time", m.time);
            rec.insert("device".into(), "undefined".into());
            rec.insert("audience".into(), "ALL".into());
            rec.insert(
                "sentBy".into(),
                if m.consumer { "Consumer" } else { "Agent" }.into(),
            );
            if let Some(c) = context {
                rec.insert("contextData".into(), c);
            }
            records.push(Value::Object(rec));

            // The recipient accepts and (usually) reads the message; a consumer message sent
            // before any agent was assigned is only picked up at the assignment.
            let (reader_type, reader_id, base) = if m.consumer {
                ("Agent", agent.id.to_string(), m.time.max(assigned[seg]))
            } else {
                ("Consumer", self.consumer.id.clone(), m.time)
            };
            let accept = clamp(base + self.r.range(50, 1_500));
            statuses.push(status(
                &id,
                m.seq,
                accept,
                &reader_id,
                reader_type,
                "ACCEPT",
            ));
            if self.r.chance(850) {
                let read = clamp(accept + self.r.range(500, 40_000));
                statuses.push(status(&id, m.seq, read, &reader_id, reader_type, "READ"));
            }

            if m.consumer {
                let raw = if self.r.chance(150) {
                    -1
                } else {
                    self.r.range(0, 100)
                };
                if raw >= 0 {
                    scored += 1;
                    score_sum += raw;
                    mcs = score_sum / scored;
                }
                let mut s = Map::new();
                s.insert("messageId".into(), message_id(&id, m.seq).into());
                s.insert("messageRawScore".into(), raw.into());
                s.insert("mcs".into(), mcs.into());
                put_time(&mut s, "time", clamp(m.time + self.r.range(300, 4_000)));
                scores.push(Value::Object(s));
            }
        }

        // ---- Participants, transfers, interactions -----------------------------------------
        let mut participants = Vec::with_capacity(segs);
        let mut active = Vec::new();
        let mut leave = Vec::new();
        let mut interactions = Vec::with_capacity(segs);
        let mut transfers = Vec::new();
        let segments = self.sk.segments.clone();
        for (k, seg) in segments.iter().enumerate() {
            let agent = &AGENTS[seg.agent];
            let p = self.agent_participant(agent, assigned[k], &id);
            participants.push(p.clone());
            // Who left when: an agent leaves at the transfer away from it, the last one at
            // the close; while open, the last one is still active. (The vendor documents
            // these two nodes only by name; same object shape assumed.)
            let left_at = if k + 1 < segs {
                transfer_at[k + 1]
            } else {
                conv_end
            };
            match left_at {
                Some(t) => {
                    let mut l = p.clone();
                    put_time(l.as_object_mut().expect("object"), "time", t);
                    leave.push(l);
                }
                None => active.push(p),
            }

            let mut i = Map::new();
            put_agent(&mut i, "assignedAgent", agent);
            put_time(&mut i, "interactionTime", assigned[k]);
            i.insert("interactiveSequence".into(), (k + 1).into());
            i.insert("dialogId".into(), id.clone().into());
            interactions.push(Value::Object(i));

            if k > 0 {
                let from = segments[k - 1];
                let from_agent = &AGENTS[from.agent];
                let reason = if from.skill != seg.skill {
                    "Skill"
                } else if self.r.chance(500) {
                    "Agent"
                } else {
                    "back2Q"
                };
                let mut t = Map::new();
                put_time(&mut t, "time", transfer_at[k].expect("transfer time"));
                if reason == "Agent" {
                    put_agent(&mut t, "assignedAgent", agent);
                } else {
                    // Back to a queue: nobody is assigned yet, and LivePerson says so with
                    // the *string* "null" (vendor example).
                    t.insert("assignedAgentId".into(), "null".into());
                }
                let (target_id, target_name) = skill_of(seg.skill);
                let (source_id, source_name) = skill_of(from.skill);
                t.insert("targetSkillId".into(), target_id.into());
                t.insert("targetSkillName".into(), target_name.into());
                t.insert("sourceSkillId".into(), source_id.into());
                t.insert("sourceSkillName".into(), source_name.into());
                put_agent(&mut t, "sourceAgent", from_agent);
                if from_agent.user_type == UserType::Bot {
                    t.insert("contextData".into(), handoff_context());
                }
                t.insert("reason".into(), reason.into());
                t.insert("by".into(), from_agent.id.into());
                t.insert("dialogId".into(), id.clone().into());
                transfers.push(Value::Object(t));
            }
        }

        // ---- Close, dialogs, survey --------------------------------------------------------
        let close = (!open).then(|| match self.r.weighted(&[50, 35, 15]) {
            0 => ("AGENT", "MANUAL_CLOSE"),
            1 => ("CONSUMER", "MANUAL_CLOSE"),
            _ => ("SYSTEM", "AUTO_CLOSE"),
        });
        let survey_dialog_id = d.derived_uuid(self.index, SALT_SURVEY_DIALOG);
        let mut dialogs = Vec::new();
        let mut main = Map::new();
        main.insert("dialogId".into(), id.clone().into());
        main.insert("status".into(), if open { "OPEN" } else { "CLOSE" }.into());
        main.insert("dialogType".into(), "MAIN".into());
        main.insert("dialogChannelType".into(), "MESSAGING".into());
        put_time(&mut main, "startTime", start);
        put_opt_time(&mut main, "endTime", conv_end);
        if let Some((reason, desc)) = close {
            main.insert("closeReason".into(), reason.into());
            main.insert("closeReasonDescription".into(), desc.into());
        }
        main.insert("skillId".into(), latest_skill_id.into());
        main.insert("skillName".into(), latest_skill_name.into());
        dialogs.push(Value::Object(main));

        let mut surveys = Vec::new();
        let mut csat = None;
        if let Some((s_start, s_end)) = survey_window {
            let mut sd = Map::new();
            sd.insert("dialogId".into(), survey_dialog_id.clone().into());
            sd.insert("status".into(), "CLOSE".into());
            sd.insert("dialogType".into(), "POST_SURVEY".into());
            sd.insert("dialogChannelType".into(), "MESSAGING".into());
            put_time(&mut sd, "startTime", s_start);
            put_time(&mut sd, "endTime", s_end);
            sd.insert("closeReason".into(), "SYSTEM".into());
            sd.insert("closeReasonDescription".into(), "SURVEY_DONE".into());
            sd.insert("skillId".into(), latest_skill_id.into());
            sd.insert("skillName".into(), latest_skill_name.into());
            dialogs.push(Value::Object(sd));
            let (survey, score) = self.survey(&survey_dialog_id);
            csat = score;
            surveys.push(survey);
        }

        // ---- info --------------------------------------------------------------------------
        let intents = self.intents(&id, &msgs);
        let mut info = Map::new();
        put_time(&mut info, "startTime", start);
        put_opt_time(&mut info, "endTime", end);
        put_opt_time(&mut info, "conversationEndTime", conv_end);
        put_opt_time(&mut info, "fullDialogEndTime", end);
        // Open conversations report their duration "up to retrieval time"; a fixed point
        // (the last activity) keeps the record deterministic.
        info.insert(
            "duration".into(),
            (end.unwrap_or(last_activity) - start).into(),
        );
        info.insert("conversationId".into(), id.clone().into());
        info.insert("brandId".into(), d.account_id.clone().into());
        info.insert("latestAgentId".into(), latest_agent.id.into());
        info.insert("latestAgentNickname".into(), latest_agent.nickname.into());
        info.insert("latestAgentFullName".into(), latest_agent.full_name.into());
        info.insert("latestAgentLoginName".into(), latest_agent.login.into());
        info.insert("agentDeleted".into(), latest_agent.deleted.into());
        info.insert("latestSkillId".into(), latest_skill_id.into());
        info.insert("latestSkillName".into(), latest_skill_name.into());
        info.insert("source".into(), self.source.into());
        if let Some((reason, desc)) = close {
            info.insert("closeReason".into(), reason.into());
            info.insert("closeReasonDescription".into(), desc.into());
        }
        info.insert("mcs".into(), mcs.into());
        let alerted = match mcs {
            0..=33 => -1,
            34..=66 => 0,
            _ => 1,
        };
        info.insert("alertedMCS".into(), alerted.into());
        let status = if open { "OPEN" } else { "CLOSE" };
        info.insert("status".into(), status.into());
        info.insert("fullDialogStatus".into(), status.into());
        info.insert("firstConversation".into(), self.r.chance(300).into());
        if let Some(score) = csat {
            // The examples say `csatRate`, the reference table `csat`: send both, never together.
            let name = if self.r.chance(500) {
                "csatRate"
            } else {
                "csat"
            };
            info.insert(name.into(), score.into());
        }
        self.put_device(&mut info);
        if secure_forms && let Some(Value::Array(features)) = info.get_mut("features") {
            features.push("SECUREFORMS".into());
        }
        // The message `device` is deprecated and mostly "undefined"; some integrations still
        // stamp the consumer's messages with the consumer's device.
        let consumer_device = info
            .get("device")
            .and_then(Value::as_str)
            .filter(|d| *d != "undefined")
            .map(str::to_owned);
        if let Some(device) = consumer_device
            && self.rare.chance(MESSAGE_DEVICE_PER_MILLE)
        {
            for m in records.iter_mut().filter(|m| m["sentBy"] == "Consumer") {
                m["device"] = device.clone().into();
            }
        }
        info.insert("latestAgentGroupId".into(), latest_group.id.into());
        info.insert("latestAgentGroupName".into(), latest_group.name.into());
        info.insert("latestQueueState".into(), "ACTIVE".into());
        info.insert("isPartial".into(), false.into());
        info.insert(
            "sessionId".into(),
            d.derived_uuid(self.index, SALT_SESSION).into(),
        );
        info.insert(
            "interactionContextId".into(),
            self.r.range(1, 40).to_string().into(),
        );
        info.insert("timeZone".into(), self.place.time_zone.into());
        info.insert("language".into(), self.place.language.into());
        info.insert("wasStepUp".into(), self.r.chance(20).into());
        info.insert("pendingAgentSurvey".into(), false.into());
        if let Some(first) = intents.first() {
            let sel = &first["selectedClassification"];
            info.insert("firstIntentName".into(), sel["intentName"].clone());
            info.insert("firstIntentLabel".into(), sel["intentLabel"].clone());
        }

        // ---- Remaining nodes ---------------------------------------------------------------
        let mut rec = Map::new();
        rec.insert("info".into(), Value::Object(info));
        rec.insert("campaign".into(), self.campaign());
        rec.insert("monitoring".into(), self.monitoring());
        rec.insert("messageRecords".into(), Value::Array(records));
        rec.insert("agentParticipants".into(), Value::Array(participants));
        rec.insert("agentParticipantsActive".into(), Value::Array(active));
        rec.insert("agentParticipantsLeave".into(), Value::Array(leave));
        rec.insert(
            "consumerParticipants".into(),
            json!([self.consumer_participant(join, &id)]),
        );
        rec.insert("transfers".into(), Value::Array(transfers));
        rec.insert("interactions".into(), Value::Array(interactions));
        rec.insert("dialogs".into(), Value::Array(dialogs));
        rec.insert("messageScores".into(), Value::Array(scores));
        rec.insert("messageStatuses".into(), Value::Array(statuses));
        rec.insert("conversationSurveys".into(), Value::Array(surveys));
        rec.insert(
            "coBrowseSessions".into(),
            self.cobrowse(conv_end, assigned[segs - 1], latest_agent),
        );
        if let Some(e) = conv_end
            && self.r.chance(850)
        {
            let text = self.pick_fill(self.topic.summaries);
            rec.insert(
                "summary".into(),
                json!({"text": text, "lastUpdatedTime": (e - self.r.range(0, 4_000)).max(start)}),
            );
        }
        let last = msgs.last().expect("at least two messages");
        let due_time = if open && last.consumer {
            last.time + latest.skill.map_or(300_000, |k| SKILLS[k].response_ms)
        } else {
            -1
        };
        rec.insert(
            "responseTime".into(),
            json!({
                "latestEffectiveResponseDueTime": due_time,
                "configuredResponseTime": latest.skill.map_or(300_000, |k| SKILLS[k].response_ms),
            }),
        );
        let first_message = msgs[0].time;
        if let Some(sdes) = self.sdes(start, first_message) {
            rec.insert("sdes".into(), sdes);
        }
        if let Some(un) = self.unauth_sdes(start, first_message) {
            rec.insert("unAuthSdes".into(), un);
        }
        rec.insert(
            "skillChanges".into(),
            Value::Array(self.skill_changes(&segments, &transfer_at)),
        );
        let mut unique: Vec<Value> = Vec::new();
        for i in &intents {
            let sel = &i["selectedClassification"];
            let u = json!({"intentName": sel["intentName"], "intentLabel": sel["intentLabel"]});
            if !unique.contains(&u) {
                unique.push(u);
            }
        }
        rec.insert("intents".into(), Value::Array(intents));
        rec.insert("uniqueIntents".into(), Value::Array(unique));
        let (latest_survey, previous) =
            self.agent_surveys(conv_end, latest_agent, latest.skill, &id);
        if let Some(s) = latest_survey {
            rec.insert("latestAgentSurvey".into(), s);
        }
        rec.insert(
            "previouslySubmittedAgentSurveys".into(),
            Value::Array(previous),
        );
        Value::Object(rec)
    }

    /// Assigns segment `k`: the first after a queue wait, later ones through a transfer.
    fn start_segment(
        &mut self,
        k: usize,
        cursor: &mut i64,
        assigned: &mut [i64],
        transfer_at: &mut [Option<i64>],
    ) {
        if k == 0 {
            *cursor += self.r.range(1_000, 45_000);
        } else {
            *cursor += self.r.range(3_000, 25_000);
            transfer_at[k] = Some(*cursor);
            *cursor += self.r.range(1_000, 60_000);
        }
        assigned[k] = *cursor;
    }

    fn consumer_message(
        &mut self,
        seq: usize,
        closing: bool,
    ) -> (&'static str, Value, Option<Value>) {
        if seq == 0 {
            let text = self.pick_fill(self.topic.openings);
            return ("TEXT_PLAIN", json!({"msg": {"text": text}}), None);
        }
        if closing {
            let text = *self.r.pick(CONSUMER_CLOSERS);
            return ("TEXT_PLAIN", json!({"msg": {"text": text}}), None);
        }
        // A photo of the damaged or missing bag's tag, sent as a hosted file.
        if self.topic.skill == 1 && self.r.chance(250) {
            let name = self.r.next_u64();
            let file = json!({"file": {
                "relativePath": format!("/v1/AUTH_async-images/{}/{name:016x}.jpg", self.d.account_id),
                "fileType": "JPG",
                "caption": "photo of my suitcase",
            }});
            return ("HOSTED_FILE", file, None);
        }
        let text = self.pick_fill(self.topic.follow_ups);
        ("TEXT_PLAIN", json!({"msg": {"text": text}}), None)
    }

    fn agent_message(
        &mut self,
        agent: &'static Agent,
        first: bool,
        closing: bool,
        handing_off: bool,
    ) -> (&'static str, Value, Option<Value>) {
        let bot = agent.user_type == UserType::Bot;
        let context = bot.then(|| self.bot_context());
        let template = if first {
            if bot {
                *self.r.pick(BOT_GREETINGS)
            } else {
                *self.r.pick(HUMAN_GREETINGS)
            }
        } else if handing_off {
            *self.r.pick(BOT_HANDOFFS)
        } else if closing {
            *self.r.pick(AGENT_CLOSERS)
        } else if self.r.chance(380) {
            return ("RICH_CONTENT", self.rich_content(), context);
        } else {
            *self.r.pick(self.topic.replies)
        };
        let text = self.fill(template, Some(agent));
        let mut data = json!({"msg": {"text": text}});
        if !closing && self.r.chance(80) {
            data["quickReplies"] =
                json!({"content": quick_replies(&["Yes", "No", "Talk to an agent"])});
        }
        ("TEXT_PLAIN", data, context)
    }

    /// A structured-content card, sent (as the vendor does) as a JSON document in a string.
    fn rich_content(&mut self) -> Value {
        let card = json!({
            "type": "vertical",
            "elements": [
                {"type": "image",
                 "url": format!("https://media.thriveair.example/destinations/{}.jpg", self.vars.dest_code.to_lowercase()),
                 "tooltip": self.vars.dest},
                {"type": "text", "text": format!("{} · LHR → {} {}", self.vars.flight, self.vars.dest, self.vars.dest_code),
                 "style": {"bold": true, "size": "large"}},
                {"type": "text", "text": format!("{} · booking {}", self.vars.date, self.vars.pnr)},
                {"type": "button", "title": "Manage booking", "tooltip": "Manage booking",
                 "click": {"actions": [{"type": "link", "name": "Manage booking",
                                        "uri": format!("https://www.thriveair.example/manage/{}", self.vars.pnr)}]}},
                {"type": "button", "title": "Talk to an agent", "tooltip": "Talk to an agent",
                 "click": {"actions": [{"type": "publishText", "text": "Talk to an agent"}]}}
            ]
        });
        let mut data = json!({"richContent": {"content": card.to_string()}});
        if self.r.chance(400) {
            data["quickReplies"] =
                json!({"content": quick_replies(&["That's right", "Change it", "✈️ Status"])});
        }
        data
    }

    /// Bot metadata in both forms the vendor sends: raw JSON in a string, and structured.
    fn bot_context(&mut self) -> Value {
        let confidence = self.r.range(550, 999);
        let level = match confidence {
            ..=700 => "LOW",
            701..=880 => "MEDIUM",
            _ => "HIGH",
        };
        let score = confidence as f64 / 1000.0;
        let raw = json!([
            {"type": "BotResponse",
             "intents": [{"id": self.topic.intent_id, "name": self.topic.intent_label,
                          "confidence": level, "confidenceScore": score}],
             "externalConversationId": self.id, "businessCases": [self.topic.intent_label]},
            {"type": "ActionReason", "reason": "intent matched", "reasonId": "AR-1"}
        ]);
        json!({
            "rawMetadata": raw.to_string(),
            "structuredMetadata": [
                {"botResponse": {"externalConversationId": self.id,
                                 "businessCases": [self.topic.intent_label],
                                 "intents": [{"id": self.topic.intent_id, "name": self.topic.intent_label,
                                              "confidence": level,
                                              "confidenceScore": score}]}},
                {"actionReason": {"reason": "intent matched"}}
            ]
        })
    }

    fn agent_participant(&mut self, agent: &'static Agent, time: i64, dialog: &str) -> Value {
        let group = &GROUPS[agent.group];
        let (user_type, user_type_name) = agent.user_type.codes();
        let mut p = Map::new();
        p.insert("agentId".into(), agent.id.into());
        p.insert("agentPid".into(), agent.pid().into());
        p.insert("agentLoginName".into(), agent.login.into());
        p.insert("agentNickname".into(), agent.nickname.into());
        p.insert("agentFullName".into(), agent.full_name.into());
        p.insert("agentDeleted".into(), agent.deleted.into());
        p.insert("userType".into(), user_type.into());
        p.insert("userTypeName".into(), user_type_name.into());
        p.insert("role".into(), "ASSIGNED_AGENT".into());
        p.insert("permission".into(), "ASSIGNED_AGENT".into());
        p.insert("agentGroupId".into(), group.id.into());
        p.insert("agentGroupName".into(), group.name.into());
        put_time(&mut p, "time", time);
        p.insert("dialogId".into(), dialog.into());
        if agent.user_type == UserType::Bot {
            p.insert("contextData".into(), self.bot_context());
        }
        Value::Object(p)
    }

    fn consumer_participant(&mut self, join: i64, dialog: &str) -> Value {
        let mut c = Map::new();
        c.insert("participantId".into(), self.consumer.id.clone().into());
        let (first, last, name, email, phone) = match (self.consumer.first, self.consumer.last) {
            (Some(f), Some(l)) => (
                f.to_string(),
                l.to_string(),
                f.to_string(),
                format!("customer{:05}@mail.example", self.r.range(0, 99_999)),
                if self.r.chance(600) {
                    format!("+44 7700 900{:03}", self.r.range(0, 999))
                } else {
                    "undefined".to_string()
                },
            ),
            _ => (
                "undefined".into(),
                "undefined".into(),
                "Visitor".into(),
                "undefined".into(),
                // The vendor examples show both placeholders for a missing phone number.
                if self.r.chance(500) { "0" } else { "undefined" }.into(),
            ),
        };
        c.insert("firstName".into(), first.into());
        c.insert("lastName".into(), last.into());
        // App users are authenticated: their participant carries the brand's token.
        let token = if self.source == "APP" && self.x.chance(700) {
            format!("{:016x}", self.x.next_u64())
        } else {
            "undefined".to_string()
        };
        c.insert("token".into(), token.into());
        c.insert("email".into(), email.into());
        c.insert("phone".into(), phone.into());
        // Social and messaging channels pass the consumer's profile picture on.
        let social = matches!(
            self.source,
            "FACEBOOK" | "WhatsApp Business" | "Apple Business Chat"
        );
        let avatar = if social && self.x.chance(600) {
            format!(
                "https://avatars.social.example/{:012x}.jpg",
                self.x.next_u64() >> 16
            )
        } else {
            "undefined".to_string()
        };
        c.insert("avatarURL".into(), avatar.into());
        put_time(&mut c, "time", join);
        put_time(&mut c, "joinTime", join);
        c.insert("consumerName".into(), name.into());
        c.insert("dialogId".into(), dialog.into());
        Value::Object(c)
    }

    /// The post-conversation survey and the CSAT score it yields (if answered validly).
    fn survey(&mut self, dialog: &str) -> (Value, Option<i64>) {
        let csat = 1 + self.r.weighted(&[5, 8, 15, 35, 37]) as i64;
        let valid = self.r.chance(950);
        let mut data = vec![if valid {
            json!({"question": "How would you rate your experience with Thrive Air today?",
                   "answer": csat.to_string(), "questionId": "q-csat", "answerId": format!("a-csat-{csat}"),
                   "questionType": "csat", "questionFormat": "single", "answerSeq": "1", "isValidAnswer": true})
        } else {
            json!({"question": "How would you rate your experience with Thrive Air today?",
                   "answer": "meh", "questionId": "q-csat", "answerId": "InvalidAnswer",
                   "questionType": "csat", "questionFormat": "single", "answerSeq": "1", "isValidAnswer": false})
        }];
        let resolved = if self.r.chance(750) { "Yes" } else { "No" };
        data.push(json!({"question": "Did we resolve your issue?", "answer": resolved,
                         "questionId": "q-fcr", "answerId": format!("a-fcr-{}", resolved.to_lowercase()),
                         "questionType": "fcr", "questionFormat": "single", "answerSeq": "2", "isValidAnswer": true}));
        let nps = self.r.range(0, 10);
        data.push(json!({"question": "How likely are you to recommend Thrive Air to a friend?",
                         "answer": nps.to_string(), "questionId": "q-nps", "answerId": format!("a-nps-{nps}"),
                         "questionType": "nps", "questionFormat": "single", "answerSeq": "3", "isValidAnswer": true}));
        if self.r.chance(500) {
            let text = *self.r.pick(SURVEY_FREE_TEXT);
            data.push(json!({"question": "Anything else you would like to tell us?", "answer": text,
                             "questionId": "q-free", "answerId": "q-free",
                             "questionType": "custom", "questionFormat": "open", "answerSeq": "4", "isValidAnswer": true}));
        }
        let survey = json!({"surveyType": "Satisfaction", "surveyStatus": "FILLED", "dialogId": dialog,
                            "surveyId": "4400000001", "surveyData": data});
        (survey, valid.then_some(csat))
    }

    fn intents(&mut self, conversation: &str, msgs: &[Msg]) -> Vec<Value> {
        let mut out = Vec::new();
        if !self.r.chance(600) {
            return out;
        }
        let consumer_seqs: Vec<usize> = msgs.iter().filter(|m| m.consumer).map(|m| m.seq).collect();
        let mut tagged = vec![consumer_seqs[0]];
        if consumer_seqs.len() > 1 && self.r.chance(200) {
            tagged.push(consumer_seqs[1 + self.r.below(consumer_seqs.len() as u64 - 1) as usize]);
        }
        for seq in tagged {
            let top = self.r.range(550, 999);
            let classification = |t: &Topic, score: i64| {
                json!({"intentName": t.intent_id, "intentLabel": t.intent_label,
                       "confidenceScore": score as f64 / 1000.0,
                       "versions": [{"modelName": "sic", "modelVersion": "1.0"},
                                    {"modelName": "thrive_air_classifier", "modelVersion": "2.3"}]})
            };
            let selected = classification(self.topic, top);
            let mut all = vec![selected.clone()];
            for _ in 0..self.r.range(1, 2) {
                let other = self.r.pick(TOPICS);
                if !std::ptr::eq(other, self.topic) {
                    all.push(classification(other, self.r.range(0, top / 2)));
                }
            }
            out.push(
                json!({"selectedClassification": selected, "allClassifications": all,
                            "messageId": message_id(conversation, seq)}),
            );
        }
        out
    }

    fn put_device(&mut self, info: &mut Map<String, Value>) {
        let (device, browser, version, os, os_version, integration, app_id, model) =
            match self.source {
                "APP" => {
                    if self.r.chance(550) {
                        (
                            "MOBILE",
                            "undefined",
                            "undefined",
                            "IOS",
                            "17.4",
                            "mobile-sdk",
                            "com.thriveair.app",
                            "iPhone14,2",
                        )
                    } else {
                        (
                            "MOBILE",
                            "undefined",
                            "undefined",
                            "ANDROID",
                            "14",
                            "mobile-sdk",
                            "com.thriveair.app",
                            "SM-S911B",
                        )
                    }
                }
                "SHARK" => match self.r.weighted(&[45, 20, 15, 10, 10]) {
                    0 => (
                        "DESKTOP",
                        "CHROME",
                        "122.0",
                        "WINDOWS",
                        "10",
                        "web-sdk",
                        "webAsync",
                        "undefined",
                    ),
                    1 => (
                        "DESKTOP",
                        "SAFARI",
                        "17.3",
                        "MAC_OSX",
                        "14.3",
                        "web-sdk",
                        "webAsync",
                        "undefined",
                    ),
                    2 => (
                        "MOBILE",
                        "CHROME",
                        "121.0",
                        "ANDROID",
                        "13",
                        "web-sdk",
                        "webAsync",
                        "undefined",
                    ),
                    3 => (
                        "TABLET",
                        "SAFARI",
                        "16.6",
                        "IOS",
                        "16.6",
                        "web-sdk",
                        "webAsync",
                        "undefined",
                    ),
                    _ => (
                        "DESKTOP",
                        "FIREFOX",
                        "123.0",
                        "LINUX",
                        "undefined",
                        "web-sdk",
                        "webAsync",
                        "undefined",
                    ),
                },
                _ => (
                    "undefined",
                    "undefined",
                    "undefined",
                    "NA",
                    "undefined",
                    "brand-sdk",
                    "undefined",
                    "undefined",
                ),
            };
        info.insert("device".into(), device.into());
        info.insert("deviceModel".into(), model.into());
        info.insert("browser".into(), browser.into());
        info.insert("browserVersion".into(), version.into());
        info.insert("operatingSystem".into(), os.into());
        info.insert("operatingSystemVersion".into(), os_version.into());
        info.insert("integration".into(), integration.into());
        info.insert(
            "integrationVersion".into(),
            if integration == "mobile-sdk" {
                "6.2.1"
            } else {
                "3.0"
            }
            .into(),
        );
        info.insert("appId".into(), app_id.into());
        if integration == "mobile-sdk" {
            info.insert("appVersion".into(), "4.12.0".into());
        }
        let mut features = vec!["RICHCONTENT", "QUICKREPLIES", "AUTOMESSAGES"];
        if self.source == "APP" || self.source == "SHARK" {
            features.push("PHOTOSHARING");
        }
        if self.source == "APP" {
            features.push("COAPP");
        }
        info.insert("features".into(), json!(features));
        info.insert("ipAddress".into(), self.ip_address().into());
    }

    fn ip_address(&self) -> String {
        // Documentation address blocks (RFC 5737), fixed per conversation.
        let h = key(self.d.seed, self.index, 77);
        let block = ["192.0.2", "198.51.100", "203.0.113"][(h % 3) as usize];
        format!("{block}.{}", (h >> 8) % 254 + 1)
    }

    fn campaign(&mut self) -> Value {
        let mut c = match self.source {
            "SHARK" => json!({
                "campaignEngagementId": "3300000011", "campaignEngagementName": "Help button – Manage booking",
                "campaignId": "3300000001", "campaignName": "Web support",
                "engagementSource": "WEB_SITE", "locationId": "3300000021", "locationName": "Manage booking pages",
            }),
            "APP" => json!({
                "campaignEngagementId": "3300000012", "campaignEngagementName": "In-app chat",
                "campaignId": "3300000002", "campaignName": "In-app support",
                "engagementSource": "WEB_SITE", "locationId": "3300000022", "locationName": "Entire site",
                "engagementApplicationId": "7b3e1f52-9d0a-4c1e-8a55-2f6d0c9e4b11",
                "engagementApplicationName": "Thrive Air iOS & Android",
                "engagementApplicationTypeId": "92274cfd-29e7-4d94-a013-0646212d8075",
                "engagementApplicationTypeName": "Mobile App",
            }),
            _ => json!({
                "campaignEngagementId": "3300000013", "campaignEngagementName": "Messaging channels",
                "campaignId": "3300000003", "campaignName": "Social & messaging",
                "engagementSource": "SOCIAL_MEDIA", "locationId": "3300000023", "locationName": "Entire site",
            }),
        };
        let obj = c.as_object_mut().expect("object");
        obj.insert("goalId".into(), "3300000031".into());
        obj.insert("goalName".into(), "Interact with visitors".into());
        if self.r.chance(300) {
            obj.insert(
                "engagementAgentNote".into(),
                "Verify the booking reference first".into(),
            );
        }
        obj.insert("visitorBehaviorId".into(), "3300000041".into());
        obj.insert("visitorBehaviorName".into(), "Any behavior".into());
        obj.insert("visitorProfileId".into(), "3300000051".into());
        obj.insert("visitorProfileName".into(), "All visitors".into());
        // A number, while every other id in this node is a string (vendor example).
        obj.insert("lobId".into(), 3300000061i64.into());
        obj.insert("lobName".into(), "Customer service".into());
        obj.insert("behaviorSystemDefault".into(), true.into());
        obj.insert("profileSystemDefault".into(), true.into());
        c
    }

    fn monitoring(&mut self) -> Value {
        let p = self.place;
        let device = match self.source {
            "APP" => "MOBILE",
            "SHARK" => "DESKTOP",
            _ => "NA",
        };
        json!({
            "country": p.country, "countryCode": p.code, "state": p.state, "city": p.city,
            "isp": p.isp, "org": p.isp, "device": device, "ipAddress": self.ip_address(),
            "browser": if self.source == "SHARK" { "Chrome 122.0.6261.112" } else { "undefined" },
            "operatingSystem": if self.source == "SHARK" { "WINDOWS" } else { "NA" },
            "conversationStartPage": "https://www.thriveair.example/manage-booking",
            "conversationStartPageTitle": "Manage booking | Thrive Air",
        })
    }

    fn cobrowse(&mut self, conv_end: Option<i64>, assigned: i64, agent: &Agent) -> Value {
        let mut list = Vec::new();
        if let Some(e) = conv_end
            && agent.user_type == UserType::Human
            && self.r.chance(30)
        {
            let s = assigned + (e - assigned) / 4;
            let t = (s + self.r.range(20_000, 300_000)).min(e);
            list.push(json!({
                "sessionId": format!("{}:{}__{}_{}", self.d.account_id, agent.id, self.id, s),
                "startTime": lp_time(s), "startTimeL": s, "endTime": lp_time(t), "endTimeL": t,
                "interactiveTime": lp_time(s), "interactiveTimeL": s,
                "endReason": if self.r.chance(500) { "AGENT" } else { "VISITOR" },
                "duration": t - s, "type": "web", "capabilities": ["AGENT_APP_CONTROL"],
                "agentId": agent.id, "interactive": true,
            }));
        }
        json!({"coBrowseSessionsList": list})
    }

    /// Authenticated engagement attributes. `None` when the consumer shared none.
    fn sdes(&mut self, start: i64, first_message: i64) -> Option<Value> {
        let mut events = Vec::new();
        let authenticated = self.source == "APP" || self.r.chance(400);
        if authenticated && self.r.chance(750) {
            let (original, server) = self.sde_times(start, first_message);
            let tier = *self.r.pick(&["gold", "silver", "blue", "platinum"]);
            let mut info = json!({
                "customerStatus": "active", "customerType": tier,
                "balance": format!("{}.00", self.r.range(0, 250) * 1000), "currency": "GBP",
                "customerId": self.vars.member, "userName": format!("member{}", self.r.range(1000, 99999)),
                "loginStatus": "1",
                "registrationDate": {"year": self.r.range(2005, 2019).to_string(), "month": self.r.range(1, 12).to_string(),
                                     "day": self.r.range(1, 28).to_string()},
            });
            if self.r.chance(400) {
                info["lastPaymentDate"] =
                    json!({"year": "2019", "month": "11", "day": self.r.range(1, 28).to_string()});
            }
            self.customer_info_extras(&mut info);
            events.push(json!({
                "customerInfo": {"serverTimeStamp": server.to_string(), "originalTimeStamp": original.to_string(),
                                 "customerInfo": info},
                "sdeType": "CUSTOMER_INFO", "serverTimeStamp": server.to_string(),
            }));
        }
        if authenticated && self.r.chance(550) {
            let (original, server) = self.sde_times(start, first_message);
            let name = self.consumer.first.unwrap_or("Alex");
            let surname = self.consumer.last.unwrap_or("Taylor");
            let year = self.r.range(1950, 2004);
            events.push(json!({
                "personalInfo": {"serverTimeStamp": server.to_string(), "originalTimeStamp": original.to_string(),
                                 "personalInfo": {
                                     "name": name, "surname": surname, "language": self.place.language,
                                     "customerAge": {"customerAgeInYears": format!("{}.0", 2020 - year),
                                                     "customerYearOfBirth": year.to_string(),
                                                     "customerMonthOfBirth": self.r.range(1, 12).to_string(),
                                                     "customerDateOfBirth": self.r.range(1, 28).to_string()},
                                     "contacts": [{"personalContact": {
                                         "email": format!("member{}@mail.example", self.r.range(1000, 99999)),
                                         "phone": format!("+44 7700 900{:03}", self.r.range(0, 999))}}]}},
                "sdeType": "PERSONAL_INFO", "serverTimeStamp": server.to_string(),
            }));
            if let Some(last) = events.last_mut() {
                self.personal_info_extras(&mut last["personalInfo"]["personalInfo"]);
            }
        }
        (!events.is_empty()).then(|| json!({ "events": events }))
    }

    /// Unauthenticated engagement attributes (returned only for `v=2`). `None` when none.
    fn unauth_sdes(&mut self, start: i64, first_message: i64) -> Option<Value> {
        let count = self.r.weighted(&[35, 35, 20, 10]);
        let mut kinds: Vec<usize> = Vec::new();
        while kinds.len() < count {
            let k = self.r.below(8) as usize;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds.sort_unstable();
        let mut events = Vec::new();
        for kind in kinds {
            let (original, server) = self.sde_times(start, first_message);
            let (o, s) = (original.to_string(), server.to_string());
            let route = format!("LHR-{}", self.vars.dest_code);
            let fare = &self.vars.price;
            let (key_name, sde_type, mut payload) = match kind {
                0 => (
                    "cartStatus",
                    "CART_STATUS",
                    json!({
                    "serverTimeStamp": s, "originalTimeStamp": o, "total": fare, "currency": "GBP", "numItems": "2",
                    "products": [
                        {"quantity": "1", "product": {"name": format!("Flight {route}"), "category": "flights", "sku": route, "price": fare}},
                        {"quantity": "1", "product": {"name": "Extra legroom seat", "category": "ancillaries", "sku": "SEAT-XL", "price": "35.0"}}
                    ]}),
                ),
                1 => (
                    "purchase",
                    "PURCHASE",
                    json!({
                    "total": fare, "currency": null, "serverTimeStamp": s, "originalTimeStamp": o,
                    "orderId": self.vars.pnr,
                    "cart": {"total": null, "serverTimeStamp": null, "products": [], "numItems": null}}),
                ),
                // `quantity` is a number here while every other SDE number is a string, as in
                // the vendor's example.
                2 => (
                    "viewedProduct",
                    "VIEWED_PRODUCT",
                    json!({
                    "serverTimeStamp": s, "originalTimeStamp": o, "currency": "GBP",
                    "products": [{"quantity": 1, "product": {"name": format!("London → {}", self.vars.dest),
                                  "category": "flights", "sku": route, "price": fare}}]}),
                ),
                3 => (
                    "marketingCampaignInfo",
                    "MARKETING_CAMPAIGN_INFO",
                    json!({
                    "serverTimeStamp": s, "originalTimeStamp": o,
                    "marketingCampaignInfo": {"originatingChannel": self.r.range(0, 6).to_string(),
                                              "affiliate": "Skyscanner", "campaignId": "Spring sale"}}),
                ),
                4 => (
                    "searchContent",
                    "SEARCH_CONTENT",
                    json!({
                    "serverTimeStamp": s, "originalTimeStamp": o,
                    "keywords": [self.pick_fill(self.topic.search_keywords)]}),
                ),
                5 => (
                    "visitorError",
                    "VISITOR_ERROR",
                    json!({
                    "serverTimeStamp": s, "originalTimeStamp": o,
                    "visitorError": {"contextId": "payment", "message": "Card expiry date missing",
                                     "code": "er100004", "level": null, "resolved": null}}),
                ),
                6 => (
                    "lead",
                    "LEAD",
                    json!({
                    "lead": {"topic": format!("Holiday package {}", self.vars.dest), "value": fare,
                             "currency": null, "leadId": format!("L-{}", self.vars.pnr)},
                    "serverTimeStamp": s, "originalTimeStamp": o}),
                ),
                _ => (
                    "serviceActivity",
                    "SERVICE_ACTIVITY",
                    json!({
                    "serverTimeStamp": s, "originalTimeStamp": o,
                    "serviceActivity": {"topic": self.topic.intent_label, "status": self.r.range(0, 13).to_string(),
                                        "category": SKILLS[self.topic.skill].name, "serviceId": format!("SR-{}", self.vars.pnr)}}),
                ),
            };
            self.unauth_extras(sde_type, &mut payload, &s, &o);
            events.push(json!({key_name: payload, "serverTimeStamp": s, "sdeType": sde_type, "isAuthenticated": false}));
        }
        (!events.is_empty()).then(|| json!({ "events": events }))
    }

    /// The rarer CUSTOMER_INFO fields: corporate travellers, travel-shop bookings, app and
    /// social identifiers.
    fn customer_info_extras(&mut self, info: &mut Value) {
        if self.x.chance(300) {
            let (company, branch, size) = *self.x.pick(&[
                ("Northwind Logistics", "Manchester", "1200"),
                ("Fabrikam Pharma", "München", "5400"),
                ("Contoso Consulting", "Lisboa", "85"),
            ]);
            info["accountName"] = format!("{company} corporate travel").into();
            info["role"] = (*self.x.pick(&["traveller", "travel manager", "assistant"])).into();
            info["companyBranch"] = branch.into();
            info["companySize"] = size.into();
        }
        if self.x.chance(150) {
            info["storeNumber"] = format!("TS-{:03}", self.x.range(1, 140)).into();
            info["storeZipCode"] =
                (*self.x.pick(&["EC1A 1BB", "M1 1AE", "80331", "1100-148"])).into();
        }
        if self.source == "APP" && self.x.chance(400) {
            info["imei"] = format!("35{:013}", self.x.range(0, 9_999_999_999_999)).into();
        }
        if self.source == "FACEBOOK" || self.x.chance(100) {
            info["socialId"] = format!("fb:{}", self.x.range(100_000_000, 999_999_999)).into();
        }
    }

    /// The rarer PERSONAL_INFO fields: gender, company, a postal address.
    fn personal_info_extras(&mut self, info: &mut Value) {
        if self.x.chance(600) {
            info["gender"] = (*self.x.pick(&["FEMALE", "MALE", "OTHER"])).into();
        }
        if self.x.chance(250) {
            info["company"] = (*self.x.pick(&[
                "Northwind Logistics",
                "Fabrikam Pharma",
                "Contoso Consulting",
            ]))
            .into();
        }
        if self.x.chance(400)
            && let Some(contact) = info["contacts"][0]["personalContact"].as_object_mut()
        {
            let p = self.place;
            // Sent as a number in one of the vendor's examples, as a string elsewhere.
            let zip: Value = if self.x.chance(500) {
                self.x.range(10_000, 99_999).into()
            } else {
                format!("{}", self.x.range(10_000, 99_999)).into()
            };
            contact.insert(
                "address".into(),
                json!({"country": p.country, "region": p.state, "zipCode": zip}),
            );
        }
    }

    /// The rarer fields of unauthenticated SDEs: a purchase's currency and full cart, stock of
    /// a viewed flight, a lead's currency, a visitor error's level and resolution.
    fn unauth_extras(&mut self, sde_type: &str, payload: &mut Value, s: &str, o: &str) {
        match sde_type {
            "PURCHASE" => {
                if self.x.chance(500) {
                    payload["currency"] = "GBP".into();
                }
                if self.x.chance(500) {
                    let route = format!("LHR-{}", self.vars.dest_code);
                    let fare = self.vars.price.clone();
                    payload["cart"] = json!({
                        "total": fare, "currency": "GBP", "serverTimeStamp": s, "originalTimeStamp": o,
                        "numItems": "1",
                        "products": [{"quantity": "1", "product": {"name": format!("Flight {route}"),
                                      "category": "flights", "sku": route, "price": fare}}]});
                }
            }
            "VIEWED_PRODUCT" => {
                if self.x.chance(600)
                    && let Some(product) = payload["products"][0]["product"].as_object_mut()
                {
                    let seats = self.x.range(0, 9);
                    let status = if seats == 0 { "SOLD_OUT" } else { "AVAILABLE" };
                    product.insert("statusInStock".into(), status.into());
                    product.insert("quantityInStock".into(), seats.to_string().into());
                }
            }
            "LEAD" if self.x.chance(500) => {
                payload["lead"]["currency"] = "GBP".into();
            }
            "VISITOR_ERROR" if self.x.chance(500) => {
                payload["visitorError"]["level"] = self.x.range(1, 3).to_string().into();
                payload["visitorError"]["resolved"] =
                    if self.x.chance(600) { "true" } else { "false" }.into();
            }
            _ => {}
        }
    }

    /// Link content: a document the agent points the consumer to.
    fn link(&mut self) -> Value {
        let (url, file_type, caption) = *self.rare.pick(LINKS);
        // LivePerson documents the fields but not the key; `link` is the key the table
        // mapping reads (see `MessageData` in crates/liveperson/src/records.rs).
        json!({"link": {"externalFileLink": url, "fileType": file_type, "caption": caption}})
    }

    /// An agent's invitation to a secure form. The key `secureForm` is assumed like `link`'s.
    fn secure_form_invitation(&mut self) -> Value {
        let (form_id, form_name) = *self.rare.pick(SECURE_FORMS);
        let invitation = format!("{:016x}", self.rare.next_u64());
        json!({"secureForm": {"formId": form_id, "formName": form_name, "invitationId": invitation}})
    }

    /// The consumer's submission of the form they were invited to (`form`: the invitation's
    /// `secureForm` object): the same form and invitation, plus the submission's id.
    fn secure_form_submit(&mut self, mut form: Value) -> (&'static str, Value) {
        form["submissionId"] = format!("{:016x}", self.rare.next_u64()).into();
        ("SECURE_FORM_SUBMIT", json!({ "secureForm": form }))
    }

    /// `skillChanges`: each move of the conversation from one skill to another, at the
    /// transfer that made it. LivePerson documents no shape for the element (§3.7.17 of the
    /// API notes); this is the one third-party type definition's guess, which the table
    /// mapping keeps whole as JSON (`skill_changes` in crates/tables/src/messaging.rs, unit
    /// tested with the same fields in crates/tables/tests/model.rs). Most records send the
    /// node empty, as the vendor's examples do.
    fn skill_changes(&mut self, segments: &[Segment], transfer_at: &[Option<i64>]) -> Vec<Value> {
        let moves: Vec<usize> = (1..segments.len())
            .filter(|&k| segments[k - 1].skill != segments[k].skill)
            .collect();
        if moves.is_empty() || !self.rare.chance(SKILL_CHANGES_PER_MILLE) {
            return Vec::new();
        }
        moves
            .into_iter()
            .map(|k| {
                let (previous_id, previous_name) = skill_of(segments[k - 1].skill);
                let (current_id, current_name) = skill_of(segments[k].skill);
                let mut c = Map::new();
                put_time(
                    &mut c,
                    "time",
                    transfer_at[k].expect("a transfer starts segment k"),
                );
                c.insert("previousSkillId".into(), previous_id.into());
                c.insert("previousSkillName".into(), previous_name.into());
                c.insert("currentSkillId".into(), current_id.into());
                c.insert("currentSkillName".into(), current_name.into());
                c.insert("reason".into(), "TRANSFER".into());
                Value::Object(c)
            })
            .collect()
    }

    /// `(originalTimeStamp, serverTimeStamp)`: created before the first message, processed
    /// a few ms later, both inside the conversation.
    fn sde_times(&mut self, start: i64, first_message: i64) -> (i64, i64) {
        let original = self.r.range(start, first_message);
        (
            original,
            (original + self.r.range(0, 80)).min(first_message),
        )
    }

    fn agent_surveys(
        &mut self,
        conv_end: Option<i64>,
        agent: &Agent,
        skill: Option<usize>,
        dialog: &str,
    ) -> (Option<Value>, Vec<Value>) {
        let Some(e) = conv_end else {
            return (None, Vec::new());
        };
        if agent.user_type != UserType::Human || !self.r.chance(250) {
            return (None, Vec::new());
        }
        let (skill_id, skill_name) = skill_of(skill);
        let resolved = if self.r.chance(800) { "yes" } else { "no" };
        let survey = |status: &str, reason: &str, at: i64, answers: Value| {
            json!({
                "surveyStatus": status, "statusReason": reason, "dialogId": dialog,
                "surveyId": self.d.derived_uuid(self.index, SALT_AGENT_SURVEY),
                "acSurveyId": "5500000101", "acSurveyName": "Agent wrap-up", "acSurveyRevision": 3,
                "surveySkillId": skill_id, "surveySkillName": skill_name,
                "assignedAgentId": agent.id, "assignedAgentNickName": agent.nickname, "assignedAgentName": agent.login,
                "performedByAgentId": agent.id, "performedByAgentNickName": agent.nickname, "performedByAgentName": agent.login,
                "lastUpdateTime": at, "submittedAnswers": answers,
            })
        };
        let answers = json!([{"questionText": "Was the issue resolved?", "questionId": "1700000000001",
                              "questionDefinition": "REGULAR_QUESTION", "questionCategory": "FREE_TEXT",
                              "answers": [{"answer": resolved, "answerId": "1700000000001"}]}]);
        let latest = survey("SUBMITTED", "SUBMITTED", e, answers);
        let previous = if self.r.chance(200) {
            let at = (e - self.r.range(1_000, 3_000)).max(self.start);
            vec![survey("SUBMITTED", "PARTIALLY_SUBMITTED", at, json!([]))]
        } else {
            Vec::new()
        };
        (Some(latest), previous)
    }
}

/// The `contextData` of a bot's hand-off to a human: an action reason, in both forms.
fn handoff_context() -> Value {
    let raw = json!([{"type": "ActionReason", "reason": "handed off to a human agent", "reasonId": "AR-2"}]);
    json!({
        "rawMetadata": raw.to_string(),
        "structuredMetadata": [{"actionReason": {"reason": "handed off to a human agent"}}]
    })
}

fn skill_of(skill: Option<usize>) -> (i64, &'static str) {
    skill.map_or((UNASSIGNED_ID, UNASSIGNED_NAME), |k| {
        (SKILLS[k].id, SKILLS[k].name)
    })
}

fn message_id(conversation: &str, seq: usize) -> String {
    format!("ms::conv:{conversation}::msg:{seq}")
}

/// `name` as LivePerson's string time and `nameL` as epoch ms, side by side.
fn put_time(obj: &mut Map<String, Value>, name: &str, ms: i64) {
    obj.insert(name.to_string(), lp_time(ms).into());
    obj.insert(format!("{name}L"), ms.into());
}

/// Like [`put_time`], with LivePerson's "not set" pair (`"undefined"`, `-1`) for `None`.
fn put_opt_time(obj: &mut Map<String, Value>, name: &str, ms: Option<i64>) {
    match ms {
        Some(ms) => put_time(obj, name, ms),
        None => {
            obj.insert(name.to_string(), "undefined".into());
            obj.insert(format!("{name}L"), (-1i64).into());
        }
    }
}

/// `{prefix}Id`, `{prefix}LoginName`, `{prefix}Nickname`, `{prefix}FullName`.
fn put_agent(obj: &mut Map<String, Value>, prefix: &str, agent: &Agent) {
    obj.insert(format!("{prefix}Id"), agent.id.into());
    obj.insert(format!("{prefix}LoginName"), agent.login.into());
    obj.insert(format!("{prefix}Nickname"), agent.nickname.into());
    obj.insert(format!("{prefix}FullName"), agent.full_name.into());
}

fn status(
    conversation: &str,
    seq: usize,
    time: i64,
    participant_id: &str,
    participant_type: &str,
    state: &str,
) -> Value {
    let mut s = Map::new();
    s.insert("messageId".into(), message_id(conversation, seq).into());
    s.insert("seq".into(), seq.into());
    put_time(&mut s, "time", time);
    s.insert("participantId".into(), participant_id.into());
    s.insert("participantType".into(), participant_type.into());
    s.insert("messageDeliveryStatus".into(), state.into());
    s.insert("dialogId".into(), conversation.into());
    Value::Object(s)
}

/// A quick-replies bar, as a JSON document in a string like the vendor sends it.
fn quick_replies(titles: &[&str]) -> String {
    let replies: Vec<Value> = titles
        .iter()
        .map(|t| {
            json!({"type": "button", "tooltip": t, "title": t,
                        "click": {"actions": [{"type": "publishText", "text": t}]}})
        })
        .collect();
    json!({"type": "quickReplies", "itemsPerRow": 3, "replies": replies}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmulatorConfig;
    use std::collections::HashSet;

    fn dataset(seed: u64) -> Dataset {
        Dataset::new(&EmulatorConfig {
            seed,
            ..EmulatorConfig::default()
        })
    }

    #[test]
    fn same_index_gives_byte_identical_json_and_seeds_differ() {
        let a = dataset(42);
        let b = dataset(42);
        let c = dataset(43);
        for i in [0u64, 1, 999, 123_456] {
            let x = serde_json::to_string(&a.conversation(i)).unwrap();
            assert_eq!(x, serde_json::to_string(&a.conversation(i)).unwrap());
            assert_eq!(x, serde_json::to_string(&b.conversation(i)).unwrap());
            assert_ne!(x, serde_json::to_string(&c.conversation(i)).unwrap());
        }
        assert_ne!(a.conversation(5), a.conversation(6));
    }

    /// Collects every `(name, epoch-ms)` time of a record, wherever it sits.
    fn times(v: &Value, out: &mut Vec<(String, i64)>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let is_time = k.ends_with("TimeL")
                        || k == "timeL"
                        || k == "lastUpdatedTime"
                        || k == "lastUpdateTime"
                        || k.ends_with("TimeStamp");
                    if is_time {
                        let ms = match child {
                            Value::Number(n) => n.as_i64(),
                            Value::String(s) => s.parse().ok(),
                            _ => None,
                        };
                        if let Some(ms) = ms {
                            out.push((k.clone(), ms));
                        }
                    }
                    // Every `xxxTimeL` has its `xxxTime` string twin in LivePerson's format.
                    if let (Some(base), Some(ms)) = (k.strip_suffix('L'), child.as_i64())
                        && k.ends_with("imeL")
                    {
                        let expected = if ms == -1 {
                            "undefined".to_string()
                        } else {
                            lp_time(ms)
                        };
                        assert_eq!(
                            m.get(base).and_then(Value::as_str),
                            Some(expected.as_str()),
                            "{k}"
                        );
                    }
                    times(child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| times(i, out)),
            _ => {}
        }
    }

    #[test]
    fn records_are_internally_consistent() {
        let d = dataset(42);
        for i in 0..1_500 {
            let rec = d.conversation(i);
            let info = &rec["info"];
            let id = d.conversation_id(i);
            assert_eq!(info["conversationId"], id.as_str());
            let start = info["startTimeL"].as_i64().unwrap();
            assert_eq!(start, d.start_time_ms(i));
            let open = info["status"] == "OPEN";
            assert_eq!(open, d.skeleton(i).open);
            let end = info["endTimeL"].as_i64().unwrap();
            if open {
                assert_eq!(end, -1);
                assert_eq!(info["endTime"], "undefined");
                assert!(info.get("closeReason").is_none());
                assert!(rec["conversationSurveys"].as_array().unwrap().is_empty());
            } else {
                assert!(end > start);
                assert_eq!(info["duration"].as_i64().unwrap(), end - start);
            }
            let mut all = Vec::new();
            times(&rec, &mut all);
            for (name, ms) in all {
                if ms == -1 && name.ends_with('L') {
                    continue;
                }
                assert!(
                    ms >= start,
                    "conversation {i}: {name}={ms} before start {start}"
                );
                if !open {
                    assert!(ms <= end, "conversation {i}: {name}={ms} after end {end}");
                }
            }
            for node in [
                "messageRecords",
                "messageStatuses",
                "agentParticipants",
                "interactions",
                "transfers",
                "consumerParticipants",
            ] {
                for child in rec[node].as_array().unwrap() {
                    assert_eq!(child["dialogId"], id.as_str(), "{node}");
                }
            }
            let messages = rec["messageRecords"].as_array().unwrap();
            assert!((2..=20).contains(&messages.len()));
            let consumer = messages
                .iter()
                .filter(|m| m["sentBy"] == "Consumer")
                .count();
            assert_eq!(rec["messageScores"].as_array().unwrap().len(), consumer);
            for (k, m) in messages.iter().enumerate() {
                assert_eq!(m["seq"], k);
                assert_eq!(m["sentBy"], if k % 2 == 0 { "Consumer" } else { "Agent" });
            }
            let agents: Vec<&str> = rec["interactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["assignedAgentId"].as_str().unwrap())
                .collect();
            assert_eq!(agents, d.skeleton(i).agent_ids().collect::<Vec<_>>());
            assert!(info["latestAgentId"].is_string());
            assert!(info["latestSkillId"].is_i64());
            let dialogs = rec["dialogs"].as_array().unwrap();
            assert_eq!(dialogs[0]["dialogType"], "MAIN");
            assert_eq!(dialogs[0]["dialogId"], id.as_str());
            let has_survey = !rec["conversationSurveys"].as_array().unwrap().is_empty();
            assert_eq!(dialogs.len(), 1 + usize::from(has_survey));
        }
    }

    /// Skill changes, link and secure-form messages and a message's device: present, rare,
    /// and consistent with the rest of the record.
    #[test]
    fn rare_nodes_appear_at_low_rates_and_agree_with_the_record() {
        let d = dataset(42);
        let (mut links, mut invitations, mut submits, mut devices) = (0, 0, 0, 0);
        let (mut messages, mut with_changes) = (0, 0);
        for i in 0..2_000 {
            let rec = d.conversation(i);
            let records = rec["messageRecords"].as_array().unwrap();
            let features = rec["info"]["features"].as_array().unwrap();
            let mut invited = false;
            for (k, m) in records.iter().enumerate() {
                messages += 1;
                let data = m["messageData"].as_object().unwrap();
                match m["type"].as_str().unwrap() {
                    "LINK" => {
                        links += 1;
                        assert_eq!(m["sentBy"], "Agent");
                        assert_eq!(data.len(), 1);
                        let link = &data["link"];
                        assert!(
                            link["externalFileLink"]
                                .as_str()
                                .unwrap()
                                .starts_with("https://")
                        );
                        assert!(link["fileType"].is_string() && link["caption"].is_string());
                    }
                    "SECURE_FORM_INVITATION" => {
                        invitations += 1;
                        invited = true;
                        assert_eq!(m["sentBy"], "Agent");
                        let form = &data["secureForm"];
                        assert!(form["formId"].is_string() && form["formName"].is_string());
                        assert!(form.get("submissionId").is_none());
                    }
                    "SECURE_FORM_SUBMIT" => {
                        submits += 1;
                        assert_eq!(m["sentBy"], "Consumer");
                        let invitation = &records[k - 1];
                        assert_eq!(invitation["type"], "SECURE_FORM_INVITATION");
                        let form = &data["secureForm"];
                        let asked = &invitation["messageData"]["secureForm"];
                        assert_eq!(form["invitationId"], asked["invitationId"]);
                        assert_eq!(form["formId"], asked["formId"]);
                        assert!(form["submissionId"].is_string());
                    }
                    _ => assert!(!data.contains_key("link") && !data.contains_key("secureForm")),
                }
                if m["device"] != "undefined" {
                    devices += 1;
                    assert_eq!(m["sentBy"], "Consumer");
                    assert_eq!(m["device"], rec["info"]["device"]);
                }
            }
            assert_eq!(invited, features.contains(&json!("SECUREFORMS")), "{i}");

            let changes = rec["skillChanges"].as_array().unwrap();
            with_changes += usize::from(!changes.is_empty());
            let skill_transfers: Vec<&Value> = rec["transfers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["sourceSkillId"] != t["targetSkillId"])
                .collect();
            if !changes.is_empty() {
                assert_eq!(changes.len(), skill_transfers.len());
                for (c, t) in changes.iter().zip(skill_transfers) {
                    assert_eq!(c["timeL"], t["timeL"]);
                    assert_eq!(c["previousSkillId"], t["sourceSkillId"]);
                    assert_eq!(c["currentSkillName"], t["targetSkillName"]);
                }
            }
        }
        let share = |n: usize| n as f64 / messages as f64;
        assert!((0.002..=0.02).contains(&share(links)), "links {links}");
        assert!(
            (0.001..=0.01).contains(&share(invitations)),
            "invitations {invitations}"
        );
        assert!(submits > 0 && submits <= invitations, "submits {submits}");
        assert!((0.01..=0.15).contains(&share(devices)), "devices {devices}");
        assert!(
            (20..=200).contains(&with_changes),
            "skill changes {with_changes}"
        );
    }

    #[test]
    fn thousand_records_show_the_expected_variety() {
        let d = dataset(42);
        let mut open = 0;
        let mut rich = 0;
        let mut messages = 0;
        let mut non_ascii = 0;
        let mut skills = HashSet::new();
        let mut csat = 0;
        let mut csat_rate = 0;
        let mut null_transfers = 0;
        let mut bots = 0;
        let mut surveys = 0;
        let mut unknown_names = 0;
        for i in 0..1_000 {
            let rec = d.conversation(i);
            let info = &rec["info"];
            open += usize::from(info["status"] == "OPEN");
            csat += usize::from(info.get("csat").is_some());
            csat_rate += usize::from(info.get("csatRate").is_some());
            surveys += usize::from(!rec["conversationSurveys"].as_array().unwrap().is_empty());
            skills.insert(info["latestSkillId"].as_i64().unwrap());
            for m in rec["messageRecords"].as_array().unwrap() {
                messages += 1;
                if m["type"] == "RICH_CONTENT" {
                    rich += 1;
                    let card: Value = serde_json::from_str(
                        m["messageData"]["richContent"]["content"].as_str().unwrap(),
                    )
                    .unwrap();
                    assert_eq!(card["type"], "vertical");
                    let kinds: HashSet<&str> = card["elements"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["type"].as_str().unwrap())
                        .collect();
                    assert_eq!(kinds, HashSet::from(["text", "button", "image"]));
                }
                if let Some(text) = m["messageData"]["msg"]["text"].as_str()
                    && !text.is_ascii()
                {
                    non_ascii += 1;
                }
            }
            for t in rec["transfers"].as_array().unwrap() {
                null_transfers += usize::from(t["assignedAgentId"] == "null");
            }
            bots += usize::from(
                rec["agentParticipants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["userTypeName"] == "Bot"),
            );
            unknown_names +=
                usize::from(rec["consumerParticipants"][0]["firstName"] == "undefined");
        }
        assert!((20..=90).contains(&open), "open {open}");
        let rich_share = rich as f64 / messages as f64;
        assert!(
            (0.05..=0.15).contains(&rich_share),
            "rich content share {rich_share}"
        );
        assert!(non_ascii > 50, "non-ASCII texts {non_ascii}");
        assert!(skills.len() >= 6, "skills {skills:?}");
        assert!(
            csat > 50 && csat_rate > 50,
            "csat {csat} csatRate {csat_rate}"
        );
        assert!((300..=450).contains(&surveys), "surveys {surveys}");
        assert!(null_transfers > 50, "transfers to a queue {null_transfers}");
        assert!(bots > 200, "conversations with a bot {bots}");
        assert!(
            unknown_names > 200,
            "consumers without a name {unknown_names}"
        );
    }
}
