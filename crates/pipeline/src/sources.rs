//! Record sources: where a drop's records come from. Each feeds a [`DropBuilder`] and says
//! what the manifest's `source` is; [`crate::run_drop`] does the rest the same way for all.
//!
//! - [`Search`]: a window of Messaging Interactions or Engagement History search pages;
//! - [`ById`]: conversations re-read by id (late data);
//! - [`AccountConfig`]: the account's users, skills and agent groups (a snapshot);
//! - [`crate::SavedPages`]: saved search responses (`convert`).

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use lpdrop_drop::SourceInfo;
use lpdrop_liveperson::window::fmt_ms;
use lpdrop_liveperson::{AccountEntity, Client, FetchedPage, SearchFilters, Window};
use lpdrop_tables::Source;
use tokio::sync::mpsc;

use crate::builder::DropBuilder;
use crate::progress::{Counts, Progress};
use crate::run::{api_name, time_basis};

/// Sub-windows are at most one day: small enough that `count` stays far from deep offsets on
/// most accounts, large enough to keep the request count low (busy days are halved further).
pub const DEFAULT_SUB_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// A builder that every record has gone into, and the manifest's account of where they came
/// from (its counts are filled in by the commit).
pub struct Fed {
    pub builder: DropBuilder,
    pub source: SourceInfo,
}

/// Where a drop's records come from.
pub trait RecordSource: Send {
    /// Which tables the records fill.
    fn tables(&self) -> Source;
    /// The account the records belong to (the lineage of every row).
    fn account_id(&self) -> &str;
    /// What the run is about, for logs (a window, or the input's name).
    fn label(&self) -> String;
    /// True when repeats may be anywhere in the input (saved pages), not only within one
    /// sub-window: the builder then remembers every id and encodes on a thread of its own.
    fn dedup_across_input(&self) -> bool {
        false
    }
    /// Feeds every record into `builder`. CPU-heavy work runs on blocking threads.
    fn feed(
        self,
        builder: DropBuilder,
        progress: Arc<dyn Progress>,
    ) -> impl Future<Output = Result<Fed>> + Send;
}

/// The manifest's `source` for a window of a source.
fn source_info(
    client: &Client,
    tables: Source,
    window: Window,
    time_basis: &str,
    filters: serde_json::Value,
) -> SourceInfo {
    SourceInfo {
        account_id: client.config().account_id.clone(),
        api: api_name(tables).into(),
        window_from: fmt_ms(window.from_ms()),
        window_to: fmt_ms(window.to_ms()),
        time_basis: time_basis.into(),
        filters,
        conversations: 0,
        open_conversations: 0,
    }
}

/// A window of search pages: Messaging Interactions (conversations) or Engagement History
/// (chats). Fetching (async, concurrent) and building (CPU-bound, on a blocking thread)
/// overlap; the bounded channel keeps memory flat when one side is faster.
pub struct Search {
    pub client: Client,
    /// [`Source::Messaging`] or [`Source::Chat`].
    pub tables: Source,
    pub window: Window,
    pub filters: SearchFilters,
    /// The longest sub-window asked for in one search.
    pub sub_window_ms: i64,
}

impl Search {
    pub fn new(client: Client, tables: Source, window: Window, filters: SearchFilters) -> Self {
        Search {
            client,
            tables,
            window,
            filters,
            sub_window_ms: DEFAULT_SUB_WINDOW_MS,
        }
    }
}

impl RecordSource for Search {
    fn tables(&self) -> Source {
        self.tables
    }

    fn account_id(&self) -> &str {
        &self.client.config().account_id
    }

    fn label(&self) -> String {
        self.window.to_string()
    }

    async fn feed(self, mut builder: DropBuilder, progress: Arc<dyn Progress>) -> Result<Fed> {
        let (tx, mut rx) = mpsc::channel::<FetchedPage>(16);
        let (api, what) = match self.tables {
            Source::Chat => ("EH search", "chats"),
            _ => ("MI search", "conversations"),
        };
        progress.begin_window(what, self.window.from_ms(), self.window.to_ms());
        let shown = progress.clone();
        let building = tokio::task::spawn_blocking(move || -> Result<DropBuilder> {
            let mut windows = 0;
            let mut current = None;
            while let Some(page) = rx.blocking_recv() {
                let origin = format!("{api} {} offset {}", page.window, page.offset);
                if current != Some(page.window) {
                    current = Some(page.window);
                    windows += 1;
                    tracing::debug!(window = %page.window, "paging a sub-window");
                }
                lpdrop_drop::crash::crash_point("fetch");
                builder.page(&page.body, Some(page.window), &origin)?;
                let s = &builder.stats;
                shown.update(
                    page.window.from_ms(),
                    Counts {
                        windows,
                        pages: s.pages,
                        records: s.conversations,
                        input_bytes: s.input_bytes,
                    },
                );
            }
            Ok(builder)
        });
        let fetched = match self.tables {
            Source::Chat => {
                self.client
                    .fetch_chat_window(self.window, &self.filters, self.sub_window_ms, tx)
                    .await
            }
            _ => {
                self.client
                    .fetch_window(self.window, &self.filters, self.sub_window_ms, tx)
                    .await
            }
        };
        let built = building.await.context("the builder thread panicked")?;
        progress.finish();
        let builder = built.with_context(|| format!("fetching {}", self.window))?;
        fetched.with_context(|| format!("fetching {}", self.window))?;
        let filters = serde_json::json!({
            "skill_ids": self.filters.skill_ids,
            "status": self.filters.status,
        });
        Ok(Fed {
            source: source_info(
                &self.client,
                self.tables,
                self.window,
                time_basis(self.tables),
                filters,
            ),
            builder,
        })
    }
}

/// Late data: the full records of conversations by id (100 per call), so that the newest drop
/// holds their final state. Those still open are reported again by the builder. `window` only
/// labels the drop: it is when the re-read was enqueued.
pub struct ById {
    pub client: Client,
    pub ids: Vec<String>,
    pub window: Window,
}

impl RecordSource for ById {
    fn tables(&self) -> Source {
        Source::Messaging
    }

    fn account_id(&self) -> &str {
        &self.client.config().account_id
    }

    fn label(&self) -> String {
        format!("{} conversations by id", self.ids.len())
    }

    async fn feed(self, mut builder: DropBuilder, _progress: Arc<dyn Progress>) -> Result<Fed> {
        let pages = self
            .client
            .conversations_by_ids(&self.ids)
            .await
            .with_context(|| format!("re-reading {} conversations by id", self.ids.len()))?;
        let builder = tokio::task::spawn_blocking(move || -> Result<DropBuilder> {
            for (n, body) in pages.iter().enumerate() {
                let origin = format!("MI conversations by id, call {}", n + 1);
                builder.page(body, None, &origin)?;
            }
            Ok(builder)
        })
        .await
        .context("the builder thread panicked")??;
        let found = builder.stats.conversations as usize;
        if found < self.ids.len() {
            tracing::warn!(
                asked = self.ids.len(),
                found,
                "some conversations asked for by id were not returned (deleted, or past retention)"
            );
        }
        // The conversations started earlier, each in the window of the job that first saw it
        // open: the window here is when the refetch was enqueued.
        let filters = serde_json::json!({ "refetch_conversation_ids": self.ids.len() });
        Ok(Fed {
            source: source_info(
                &self.client,
                Source::Messaging,
                self.window,
                "refetch_enqueued",
                filters,
            ),
            builder,
        })
    }
}

/// The account configuration (users, skills, agent groups, deleted ones included) as a
/// dimension drop: a snapshot; `window` only labels it.
pub struct AccountConfig {
    pub client: Client,
    pub window: Window,
    /// Recorded in the manifest as asked; a snapshot is not filtered.
    pub filters: SearchFilters,
}

impl RecordSource for AccountConfig {
    fn tables(&self) -> Source {
        Source::Dimensions
    }

    fn account_id(&self) -> &str {
        &self.client.config().account_id
    }

    fn label(&self) -> String {
        self.window.to_string()
    }

    async fn feed(self, mut builder: DropBuilder, _progress: Arc<dyn Progress>) -> Result<Fed> {
        for entity in [
            AccountEntity::Users,
            AccountEntity::Skills,
            AccountEntity::AgentGroups,
        ] {
            let answer = self
                .client
                .account_config(entity, None)
                .await
                .with_context(|| format!("fetching the account configuration ({entity:?})"))?;
            builder = tokio::task::spawn_blocking(move || -> Result<DropBuilder> {
                let origin = format!("account configuration {entity:?}");
                builder.entities(entity, &answer.body, &origin)?;
                Ok(builder)
            })
            .await
            .context("the builder thread panicked")??;
        }
        let filters = serde_json::json!({
            "skill_ids": self.filters.skill_ids,
            "status": self.filters.status,
        });
        Ok(Fed {
            source: source_info(
                &self.client,
                Source::Dimensions,
                self.window,
                time_basis(Source::Dimensions),
                filters,
            ),
            builder,
        })
    }
}
