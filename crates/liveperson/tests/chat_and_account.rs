//! Engagement History search and the account configuration lists against the emulator, decoded
//! with the crate's own decoders; and the vendor's example payloads served as they are.

mod common;

use std::collections::BTreeSet;

use common::{Api, DAY_MS, assert_page_order, collect, extract, start, window};
use lpdrop_emulator::{Dataset, EmulatorConfig, Faults};
use lpdrop_liveperson::page::{
    decode_agent_group, decode_chat_record, decode_skill, decode_user, parse_chat_page,
    parse_entity_list, parse_page,
};
use lpdrop_liveperson::window::MAX_CHAT_SEARCH_SPAN_MS;
use lpdrop_liveperson::{AccountEntity, Client, Filters, SearchFilters};

fn config(chats_per_day: u32, faults: &str) -> EmulatorConfig {
    EmulatorConfig {
        per_day: 10,
        chats_per_day,
        faults: faults.parse::<Faults>().unwrap(),
        ..EmulatorConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_are_paged_in_one_month_windows_and_decode() {
    let cfg = config(40, "none");
    let emulator = start(cfg.clone()).await;
    let client = Client::connect(common::client_config(&emulator, &cfg))
        .await
        .unwrap();
    // 45 days: more than the 1-month limit, so at least two sub-windows.
    let whole = window("2022-01-10T05:00:00Z", "2022-02-24T05:00:00Z");
    assert!(whole.span_ms() > MAX_CHAT_SEARCH_SPAN_MS);
    let (pages, stats) =
        collect(|tx| client.fetch_chat_window(whole, SearchFilters::default(), i64::MAX, tx)).await;
    assert_page_order(&pages, whole);
    assert!(stats.windows >= 2, "{stats:?}");
    let got = extract(&pages, Api::Chat);
    let dataset = Dataset::new(&cfg);
    let expected: Vec<String> = dataset
        .chat_index_range(whole.from_ms(), whole.to_ms() - 1)
        .map(|i| dataset.engagement_id(i))
        .collect();
    let ids: Vec<String> = got.records.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, expected);

    // Every §4.2 node shows up somewhere, and decodes.
    let mut seen = BTreeSet::new();
    for page in &pages {
        for raw in parse_chat_page(&page.body).unwrap().records {
            let chat = decode_chat_record(raw).unwrap();
            assert_eq!(chat.info.ended.0, Some(true));
            assert!(chat.info.agent_nickname().is_some());
            if chat
                .transcript
                .as_ref()
                .is_some_and(|t| t.lines.iter().any(|l| l.json.0.is_some()))
            {
                seen.insert("rich content line");
            }
            if !chat.line_scores.is_empty() {
                seen.insert("line scores");
            }
            if let Some(s) = &chat.surveys {
                for (kind, items) in s.kinds() {
                    if !items.is_empty() {
                        seen.insert(kind);
                    }
                }
            }
            if chat
                .co_browse_sessions
                .as_ref()
                .is_some_and(|c| !c.co_browse_sessions_list.is_empty())
            {
                seen.insert("cobrowse");
            }
            if chat.sdes.raw.0.is_some() {
                seen.insert("sdes");
            }
            if raw.get().contains("\"formFillingError\"") {
                seen.insert("legacy sdes");
            }
        }
    }
    for node in [
        "rich content line",
        "line scores",
        "pre_chat",
        "post_chat",
        "operator",
        "cobrowse",
        "sdes",
        "legacy sdes",
    ] {
        assert!(seen.contains(node), "no {node} in {} chats", ids.len());
    }

    // Filters: one skill, one agent.
    let skill = 1_100_000_002;
    let (pages, _) = collect(|tx| {
        client.fetch_chat_window(
            whole,
            SearchFilters {
                skill_ids: vec![skill],
                status: Vec::new(),
            },
            i64::MAX,
            tx,
        )
    })
    .await;
    let got = extract(&pages, Api::Chat).records;
    assert!(!got.is_empty() && got.len() < ids.len());
    assert!(
        got.iter()
            .all(|(_, raw)| raw.contains(&format!("\"skillId\":{skill}")))
    );
    let agent = "2200000004";
    let (pages, _) = collect(|tx| {
        client.fetch_chat_window(
            whole,
            Filters {
                agent_ids: vec![agent.into()],
                ..Filters::default()
            },
            i64::MAX,
            tx,
        )
    })
    .await;
    let got = extract(&pages, Api::Chat).records;
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|(_, raw)| raw.contains(&format!("\"agentId\":\"{agent}\"")))
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_chats_and_faults_change_nothing() {
    let whole = window("2022-03-01", "2022-03-11");
    let mut runs = Vec::new();
    for faults in [
        "none",
        "partial=0.05,500=0.05,truncate=0.02,shards=0.02,seed=5",
    ] {
        let cfg = config(60, faults);
        let emulator = start(cfg.clone()).await;
        let mut cc = common::client_config(&emulator, &cfg);
        cc.page_size = 30;
        let client = Client::connect(cc).await.unwrap();
        let (pages, _) =
            collect(|tx| client.fetch_chat_window(whole, SearchFilters::default(), DAY_MS, tx))
                .await;
        runs.push((extract(&pages, Api::Chat).records, emulator.stats()));
        emulator.shutdown().await;
    }
    let (flaky_stats, clean_stats) = (runs[1].1, runs[0].1);
    println!("{flaky_stats:?}");
    assert!(flaky_stats.partial_records > 0 && flaky_stats.by_id_requests > 0);
    assert_eq!(clean_stats.partial_records, 0);
    assert_eq!(runs[1].0.len(), 600);
    assert_eq!(
        runs[0].0, runs[1].0,
        "identical chats, partial ones completed"
    );
}

#[tokio::test]
async fn account_configuration_decodes_with_deleted_entities() {
    let cfg = config(10, "none");
    let emulator = start(cfg.clone()).await;
    let client = Client::connect(common::client_config(&emulator, &cfg))
        .await
        .unwrap();
    let users = client.users().await.unwrap();
    let users: Vec<_> = parse_entity_list(&users)
        .unwrap()
        .into_iter()
        .map(|r| decode_user(r).unwrap())
        .collect();
    assert!(users.len() >= 10);
    assert!(
        users.iter().any(|u| u.deleted.0 == Some(true)),
        "deleted users included"
    );
    assert!(
        users
            .iter()
            .all(|u| u.login_name.0.is_some() && u.user_type_id.0.is_some())
    );
    let skills = client.skills().await.unwrap();
    let skills: Vec<_> = parse_entity_list(&skills)
        .unwrap()
        .into_iter()
        .map(|r| decode_skill(r).unwrap())
        .collect();
    assert!(skills.iter().any(|s| s.deleted.0 == Some(true)));
    assert!(
        skills
            .iter()
            .any(|s| s.name.0.as_deref() == Some("Refunds"))
    );
    assert!(
        skills
            .iter()
            .any(|s| !s.skill_routing_configuration.is_empty())
    );
    let groups = client.agent_groups().await.unwrap();
    let groups: Vec<_> = parse_entity_list(&groups)
        .unwrap()
        .into_iter()
        .map(|r| decode_agent_group(r).unwrap())
        .collect();
    assert!(groups.iter().any(|g| g.deleted.0 == Some(true)));
    // Every user's skills and group resolve.
    let skill_ids: BTreeSet<i64> = skills.iter().filter_map(|s| s.id.0).collect();
    let group_ids: BTreeSet<i64> = groups.iter().filter_map(|g| g.id.0).collect();
    for u in &users {
        assert!(
            u.skill_ids
                .iter()
                .all(|s| skill_ids.contains(&s.0.unwrap()))
        );
        let member = u
            .member_of
            .as_ref()
            .and_then(|m| m.agent_group_id.0)
            .unwrap();
        assert!(group_ids.contains(&member));
    }
    // A revision that has not changed answers 304.
    let first = client
        .account_config(AccountEntity::Skills, None)
        .await
        .unwrap();
    let revision = first.revision.clone().expect("an ac-revision header");
    let again = client
        .account_config(AccountEntity::Skills, Some(&revision))
        .await
        .unwrap();
    assert!(again.not_modified && again.body.is_empty());
    emulator.shutdown().await;
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/liveperson-docs")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn vendor_examples_are_served_as_they_are() {
    let cfg = EmulatorConfig {
        vendor_fixtures: true,
        ..EmulatorConfig::default()
    };
    let emulator = start(cfg.clone()).await;
    let client = Client::connect(common::client_config(&emulator, &cfg))
        .await
        .unwrap();
    // Day numbers: 2016-08-29 is day 17042 (even: the main MI example), 17043 odd.
    let even = window("2016-08-29", "2016-08-30");
    let odd = window("2016-08-30", "2016-08-31");
    let main = client
        .search_page(even, SearchFilters::default(), 0)
        .await
        .unwrap();
    assert_eq!(&main[..], &fixture("msghist-search-example.json")[..]);
    let sdes = client
        .search_page(odd, SearchFilters::default(), 0)
        .await
        .unwrap();
    assert_eq!(&sdes[..], &fixture("msghist-search-example-sdes.json")[..]);
    assert_eq!(parse_page(&main).unwrap().records.len(), 1);
    // 2017-02-01 is day 17198 (mod 3 = 2): the paging example; the next day the first one.
    let eh = client
        .search_chat_page(
            window("2017-02-01", "2017-02-02"),
            SearchFilters::default(),
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        &eh[..],
        &fixture("enghist-search-example-paging-sdes.json")[..]
    );
    let eh = client
        .search_chat_page(
            window("2017-02-02", "2017-02-03"),
            SearchFilters::default(),
            0,
        )
        .await
        .unwrap();
    assert_eq!(&eh[..], &fixture("enghist-search-example.json")[..]);
    for r in parse_chat_page(&eh).unwrap().records {
        decode_chat_record(r).unwrap();
    }
    let users = client.users().await.unwrap();
    let mut expected = b"[".to_vec();
    expected.extend(fixture("users-entity-example.json"));
    expected.push(b']');
    assert_eq!(&users[..], &expected[..]);
    for raw in parse_entity_list(&users).unwrap() {
        decode_user(raw).unwrap();
    }
    emulator.shutdown().await;
}
