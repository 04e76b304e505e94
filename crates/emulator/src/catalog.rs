//! The fixed world of Thrive Air's customer service: skills, agents, groups, places, names and
//! the phrases people type.
//!
//! Everything here is `static` so that generating a record allocates only its own JSON. Names
//! and cities deliberately include non-ASCII text (umlauts, accents, Japanese, emoji) so that
//! the client's UTF-8 handling, parquet strings and BI tools all get exercised.

pub(crate) struct Skill {
    pub id: i64,
    pub name: &'static str,
    /// `responseTime.configuredResponseTime`, in ms.
    pub response_ms: i64,
}

#[rustfmt::skip]
pub(crate) const SKILLS: &[Skill] = &[
    Skill { id: 1100000001, name: "Bookings", response_ms: 120_000 },
    Skill { id: 1100000002, name: "Baggage", response_ms: 300_000 },
    Skill { id: 1100000003, name: "Refunds", response_ms: 600_000 },
    Skill { id: 1100000004, name: "Loyalty", response_ms: 300_000 },
    Skill { id: 1100000005, name: "Special assistance", response_ms: 60_000 },
    Skill { id: 1100000006, name: "Flight changes", response_ms: 120_000 },
];

/// What LivePerson reports when no skill is set: id -1, name "Unassigned".
pub(crate) const UNASSIGNED_ID: i64 = -1;
pub(crate) const UNASSIGNED_NAME: &str = "Unassigned";

pub(crate) struct Group {
    pub id: i64,
    pub name: &'static str,
}

#[rustfmt::skip]
pub(crate) const GROUPS: &[Group] = &[
    Group { id: -1, name: "Unassigned" },
    Group { id: 5500000001, name: "Heathrow Hub" },
    Group { id: 5500000002, name: "Manchester Hub" },
    Group { id: 5500000003, name: "Lisboa Remote Team" },
    Group { id: 5500000004, name: "Virtual Agents" },
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserType {
    Human,
    Bot,
}

impl UserType {
    /// `userType` and `userTypeName` as LivePerson sends them ("0" System, "1" Human, "2" Bot).
    pub(crate) fn codes(self) -> (&'static str, &'static str) {
        match self {
            UserType::Human => ("1", "Human"),
            UserType::Bot => ("2", "Bot"),
        }
    }
}

pub(crate) struct Agent {
    pub id: &'static str,
    pub login: &'static str,
    pub nickname: &'static str,
    pub full_name: &'static str,
    pub user_type: UserType,
    /// Index into [`GROUPS`].
    pub group: usize,
    /// Indices into [`SKILLS`].
    pub skills: &'static [usize],
    pub deleted: bool,
}

impl Agent {
    /// The user's process id (`agentPid`, the Users API's `pid`): a fixed UUID-shaped value
    /// derived from the agent id.
    pub(crate) fn pid(&self) -> String {
        let h = self.id.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
            crate::rng::mix(h ^ u64::from(b))
        });
        let l = crate::rng::mix(h);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            l >> 52,
            l & 0xffff_ffff_ffff
        )
    }
}

/// The triage bot that greets a third of conversations before routing them to a skill.
pub(crate) const TRIAGE_BOT: usize = 0;

#[rustfmt::skip]
pub(crate) const AGENTS: &[Agent] = &[
    Agent { id: "2200000001", login: "skye.bot", nickname: "Skye", full_name: "Skye (virtual assistant)", user_type: UserType::Bot, group: 4, skills: &[], deleted: false },
    Agent { id: "2200000002", login: "amelia.jones", nickname: "Amelia", full_name: "Amelia Jones", user_type: UserType::Human, group: 1, skills: &[0, 5], deleted: false },
    Agent { id: "2200000003", login: "lukas.mueller", nickname: "Lukas", full_name: "Lukas Müller", user_type: UserType::Human, group: 1, skills: &[1, 2], deleted: false },
    Agent { id: "2200000004", login: "chloe.dubois", nickname: "Chloé", full_name: "Chloé Dubois", user_type: UserType::Human, group: 3, skills: &[3, 0], deleted: false },
    Agent { id: "2200000005", login: "yuki.tanaka", nickname: "Yuki", full_name: "田中 由紀", user_type: UserType::Human, group: 3, skills: &[4, 0], deleted: false },
    Agent { id: "2200000006", login: "omar.haddad", nickname: "Omar", full_name: "Omar Haddad", user_type: UserType::Human, group: 2, skills: &[2, 1], deleted: false },
    Agent { id: "2200000007", login: "sofia.rossi", nickname: "Sofia", full_name: "Sofia Rossi", user_type: UserType::Human, group: 2, skills: &[5, 2], deleted: false },
    Agent { id: "2200000008", login: "james.obrien", nickname: "James", full_name: "James O'Brien", user_type: UserType::Human, group: 1, skills: &[1], deleted: false },
    Agent { id: "2200000009", login: "priya.sharma", nickname: "Priya", full_name: "Priya Sharma", user_type: UserType::Human, group: 2, skills: &[3, 4], deleted: false },
    Agent { id: "2200000010", login: "mateo.garcia", nickname: "Mateo", full_name: "Mateo García", user_type: UserType::Human, group: 3, skills: &[5, 0], deleted: false },
    // Deleted since, and never put in a group: LivePerson still reports such agents.
    Agent { id: "2200000011", login: "ingrid.lund", nickname: "Ingrid", full_name: "Ingrid Lund", user_type: UserType::Human, group: 0, skills: &[2], deleted: true },
    Agent { id: "2200000012", login: "noah.williams", nickname: "Noah", full_name: "Noah Williams", user_type: UserType::Human, group: 1, skills: &[0, 1], deleted: false },
    Agent { id: "2200000013", login: "refund.bot", nickname: "RefundBot", full_name: "Refund assistant", user_type: UserType::Bot, group: 4, skills: &[2], deleted: false },
    Agent { id: "2200000014", login: "bagtracker.bot", nickname: "BagTracker", full_name: "Bag tracker", user_type: UserType::Bot, group: 4, skills: &[1], deleted: false },
    Agent { id: "2200000015", login: "zoe.martin", nickname: "Zoë", full_name: "Zoë Martin", user_type: UserType::Human, group: 2, skills: &[4, 3], deleted: false },
];

/// Why a customer got in touch. Each topic routes to one skill and carries its own phrases.
pub(crate) struct Topic {
    pub skill: usize,
    pub intent_id: &'static str,
    pub intent_label: &'static str,
    pub openings: &'static [&'static str],
    pub follow_ups: &'static [&'static str],
    pub replies: &'static [&'static str],
    pub summaries: &'static [&'static str],
    pub search_keywords: &'static [&'static str],
}

// Placeholders filled per conversation: {flight} {pnr} {dest} {date} {bag} {miles} {price}
// {member}.
pub(crate) const TOPICS: &[Topic] = &[
    Topic {
        skill: 0,
        intent_id: "6f1d2a10-3b4c-4d5e-8f60-7a8b9c0d1e01",
        intent_label: "make a new booking",
        openings: &[
            "Hi, I want to book two seats to {dest} on {date}",
            "Hello, is there still space on {flight} to {dest}?",
            "Can I add my infant to booking {pnr}?",
            "I'm trying to pay for a flight to {dest} but the page keeps timing out",
        ],
        follow_ups: &[
            "The booking reference is {pnr}",
            "Is a window seat possible?",
            "How much would business class be?",
            "OK, please go ahead and book it",
            "Can I pay with Thrive Miles?",
        ],
        replies: &[
            "I can see availability on {flight} to {dest} on {date}.",
            "The fare is £{price} per person including taxes.",
            "I have reserved seats 14A and 14B for you under {pnr}.",
            "Payment links are valid for 30 minutes; I've just sent one to your email.",
        ],
        summaries: &[
            "New booking {pnr} to {dest} created",
            "Customer asked about fares to {dest}; quote given",
        ],
        search_keywords: &["flights to {dest}", "cheap flights", "business class"],
    },
    Topic {
        skill: 1,
        intent_id: "6f1d2a10-3b4c-4d5e-8f60-7a8b9c0d1e02",
        intent_label: "report lost baggage",
        openings: &[
            "My bag didn't arrive in {dest}. Flight {flight}",
            "Hi, my suitcase came off the belt damaged",
            "Where is my luggage?? Tag number {bag}",
            "Mein Koffer ist in München nicht angekommen, Flug {flight}",
        ],
        follow_ups: &[
            "It's a blue hard-shell case with a yellow strap",
            "The tag number is {bag}",
            "I need it before my meeting tomorrow morning",
            "Can you deliver it to my hotel?",
            "Will you cover the cost of essentials?",
        ],
        replies: &[
            "I'm sorry to hear that. I've traced tag {bag}: it is on the next flight to {dest}.",
            "I've opened a property irregularity report for you.",
            "We will courier the bag to your address within 24 hours.",
            "You can claim up to £{price} for essential items; please keep the receipts.",
        ],
        summaries: &[
            "Delayed bag {bag} traced; courier booked",
            "Damaged suitcase; PIR opened for {flight}",
        ],
        search_keywords: &["baggage allowance", "lost luggage", "bag tracking"],
    },
    Topic {
        skill: 2,
        intent_id: "6f1d2a10-3b4c-4d5e-8f60-7a8b9c0d1e03",
        intent_label: "request a refund",
        openings: &[
            "My flight {flight} was cancelled, I want a refund",
            "Hi, I'm still waiting for the refund for booking {pnr}",
            "Can I get my money back for the seat upgrade that never happened?",
            "Bonjour, je voudrais un remboursement pour le vol {flight}",
        ],
        follow_ups: &[
            "Booking reference {pnr}",
            "It's been three weeks already",
            "I'd prefer the money back, not a voucher",
            "Which card will it go back to?",
        ],
        replies: &[
            "I can confirm a refund of £{price} has been issued to the original card.",
            "Refunds take 7–10 working days to show on your statement.",
            "I've escalated booking {pnr} to our refunds team as a priority.",
            "As the flight was cancelled you are entitled to a full refund.",
        ],
        summaries: &[
            "Refund of £{price} issued for {pnr}",
            "Refund status explained; escalated {pnr}",
        ],
        search_keywords: &["refund policy", "cancelled flight refund"],
    },
    Topic {
        skill: 3,
        intent_id: "6f1d2a10-3b4c-4d5e-8f60-7a8b9c0d1e04",
        intent_label: "loyalty miles question",
        openings: &[
            "My Thrive Miles from flight {flight} are missing",
            "How do I upgrade my seat with miles?",
            "When does my Gold status expire?",
            "Hi! Can I transfer {miles} miles to my partner?",
        ],
        follow_ups: &[
            "My membership number is {member}",
            "The flight was on {date}",
            "How many miles do I need for business to {dest}?",
            "That would be great, thanks",
        ],
        replies: &[
            "I've credited {miles} Thrive Miles to your account.",
            "An upgrade to {dest} needs {miles} miles one way.",
            "Your Gold status is valid until the end of next March.",
            "Transfers between members are free twice a year.",
        ],
        summaries: &[
            "Missing miles credited for {flight}",
            "Upgrade with miles explained",
        ],
        search_keywords: &["thrive miles", "seat upgrade", "gold status"],
    },
    Topic {
        skill: 4,
        intent_id: "6f1d2a10-3b4c-4d5e-8f60-7a8b9c0d1e05",
        intent_label: "special assistance request",
        openings: &[
            "I need wheelchair assistance at {dest} airport",
            "Can I bring my guide dog on {flight}?",
            "My mother needs help boarding, booking {pnr}",
            "Hello, I'm travelling with a baby, can I pre-board?",
        ],
        follow_ups: &[
            "She can walk short distances but not the stairs",
            "The flight leaves on {date}",
            "Do I need a medical form?",
            "Thank you, that's reassuring",
        ],
        replies: &[
            "I've added wheelchair assistance (WCHR) to booking {pnr}.",
            "Assistance dogs travel free in the cabin on all our flights.",
            "Our team will meet you at the check-in desk 90 minutes before departure.",
            "No medical form is needed for this request.",
        ],
        summaries: &[
            "WCHR added to {pnr}",
            "Assistance dog confirmed on {flight}",
        ],
        search_keywords: &["wheelchair assistance", "travelling with infants"],
    },
    Topic {
        skill: 5,
        intent_id: "6f1d2a10-3b4c-4d5e-8f60-7a8b9c0d1e06",
        intent_label: "change or delayed flight",
        openings: &[
            "My flight {flight} is delayed 5 hours, what are my options?",
            "Can I move booking {pnr} to a later flight?",
            "I missed my connection to {dest}",
            "東京行きの便を変更したいです ({pnr})",
        ],
        follow_ups: &[
            "Is there anything earlier?",
            "What would the change fee be?",
            "Do I get a meal voucher for the delay?",
            "OK, the 18:40 works for me",
        ],
        replies: &[
            "I can move you to {flight} on {date} at no extra cost.",
            "The fare difference is £{price}.",
            "Meal vouchers are available at the Thrive Air desk near gate B.",
            "You're rebooked; your new boarding pass is in the app.",
        ],
        summaries: &[
            "Rebooked {pnr} onto {flight}",
            "Delay compensation explained for {flight}",
        ],
        search_keywords: &["flight status", "change flight", "delay compensation"],
    },
];

pub(crate) const DESTINATIONS: &[(&str, &str)] = &[
    ("東京", "HND"),
    ("München", "MUC"),
    ("São Paulo", "GRU"),
    ("Zürich", "ZRH"),
    ("Kraków", "KRK"),
    ("Reykjavík", "KEF"),
    ("Málaga", "AGP"),
    ("Montréal", "YUL"),
    ("New York", "JFK"),
    ("Paris", "CDG"),
    ("Dubai", "DXB"),
    ("Lisbon", "LIS"),
];

pub(crate) const CONSUMER_CLOSERS: &[&str] = &[
    "Thanks, that's all I needed ✈️",
    "Perfect, thank you!",
    "Danke schön!",
    "Merci beaucoup 😊",
    "ありがとうございます！",
    "Great, cheers 👍",
    "OK. Not happy, but thanks.",
];

pub(crate) const AGENT_CLOSERS: &[&str] = &[
    "You're welcome! Have a lovely flight with Thrive Air ✈️",
    "Glad I could help. Is there anything else I can do for you?",
    "Thanks for flying Thrive Air. Take care!",
    "My pleasure. I'll close this chat now; you can message us any time.",
];

pub(crate) const HUMAN_GREETINGS: &[&str] = &[
    "Hi{name}, I'm {agent} from Thrive Air. Let me look into that for you.",
    "Hello{name}! {agent} here 👋 I'll be happy to help.",
    "Thanks for waiting{name}. My name is {agent}, I'm taking over from here.",
];

pub(crate) const BOT_GREETINGS: &[&str] = &[
    "Hi! I'm {agent}, Thrive Air's virtual assistant ✈️ What can I help you with today?",
    "Hello{name}, {agent} here. I can help with bookings, bags, refunds and more.",
];

pub(crate) const BOT_HANDOFFS: &[&str] = &[
    "Let me connect you with one of our specialists. Please hold on.",
    "I'm transferring you to a colleague who can help with this.",
];

/// Where a consumer writes from: `monitoring` and `info.timeZone` / `info.language`.
pub(crate) struct Place {
    pub country: &'static str,
    pub code: &'static str,
    pub state: &'static str,
    pub city: &'static str,
    pub time_zone: &'static str,
    pub language: &'static str,
    pub isp: &'static str,
}

#[rustfmt::skip]
pub(crate) const PLACES: &[Place] = &[
    Place { country: "United Kingdom", code: "GB", state: "England", city: "London", time_zone: "Europe/London", language: "en-GB", isp: "British Telecommunications" },
    Place { country: "United Kingdom", code: "GB", state: "England", city: "Manchester", time_zone: "Europe/London", language: "en-GB", isp: "Virgin Media" },
    Place { country: "Germany", code: "DE", state: "Bayern", city: "München", time_zone: "Europe/Berlin", language: "de-DE", isp: "Deutsche Telekom AG" },
    Place { country: "Japan", code: "JP", state: "Tokyo", city: "東京", time_zone: "Asia/Tokyo", language: "ja-JP", isp: "NTT Communications" },
    Place { country: "Brazil", code: "BR", state: "São Paulo", city: "São Paulo", time_zone: "America/Sao_Paulo", language: "pt-BR", isp: "Telefônica Brasil" },
    Place { country: "Switzerland", code: "CH", state: "Zürich", city: "Zürich", time_zone: "Europe/Zurich", language: "de-CH", isp: "Swisscom" },
    Place { country: "France", code: "FR", state: "Île-de-France", city: "Paris", time_zone: "Europe/Paris", language: "fr-FR", isp: "Orange" },
    Place { country: "Poland", code: "PL", state: "Małopolskie", city: "Kraków", time_zone: "Europe/Warsaw", language: "pl-PL", isp: "Orange Polska" },
    Place { country: "United States", code: "US", state: "New York", city: "New York", time_zone: "America/New_York", language: "en-US", isp: "Verizon" },
    Place { country: "Spain", code: "ES", state: "Andalucía", city: "Málaga", time_zone: "Europe/Madrid", language: "es-ES", isp: "Telefónica de España" },
];

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Anna", "Jürgen", "Zoë", "José", "Søren", "Émilie", "Hiroshi", "Aoife", "Łukasz", "Björn",
    "Mei", "Oliver", "Fatima", "Chiara", "Kwame", "Olivia",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "Müller",
    "García",
    "Ødegaard",
    "Nowak",
    "O'Connor",
    "佐藤",
    "Dupont",
    "Rossi",
    "Smith",
    "Kowalczyk",
    "Andersson",
    "Silva",
    "Mensah",
    "Brown",
];

pub(crate) const SURVEY_FREE_TEXT: &[&str] = &[
    "Very quick and friendly, thanks!",
    "Took too long to get an answer",
    "Super Service, danke!",
    "Agent was great but the app kept crashing",
    "とても親切でした",
    "👍",
];
