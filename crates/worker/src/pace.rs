//! One pace per account across worker processes, through the queue's pace board.
//!
//! Every process finds the account's pace from the server's 429s; alone, each would find its
//! own and together they would ask too much. So, for each account it runs jobs of, a process
//! looks at the board every [`TICK`]:
//!
//! - the processes holding a live lease on a job of the account share it: each keeps its
//!   share of the request slots and of the pace (`RequestBudget::share_with`);
//! - a cut this process made (a 429) is published as the account's rate (its own pace times
//!   the processes sharing it), unless another process cut less than [`CUT_GAP`] ago: then
//!   that cut stands for the round, and this process takes it instead;
//! - a cut another process published is taken as this process's share of it.
//!
//! While others share the account, each request also takes its send time from the account's
//! schedule in the queue ([`BoardSchedule`]): paced separately, the processes' requests would
//! fall together at random and the server's bucket would refuse some even below its rate.
//!
//! The board is advice: when the queue cannot be read, each process goes on with its own pace.

use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use lpdrop_jobs::{PaceBoard, Queue};
use lpdrop_liveperson::{RequestBudget, SharedSchedule};

/// A cut published by one process lowers the account's rate to no less than this share of
/// what it was.
const FLOOR: f64 = 0.5;
/// How often a process looks at the board.
const TICK: Duration = Duration::from_millis(100);
/// How often before any pace is found: the first cut, by any process, ends everyone's burst.
const FIRST_TICK: Duration = Duration::from_millis(20);
/// One cut per round across the processes: a cut published less than this after another
/// process's is not taken (the limiter's own least time between cuts).
const CUT_GAP: Duration = Duration::from_secs(1);

/// What a process knows of an account's board.
pub(crate) struct Sharing {
    queue: Queue,
    worker: String,
    account: String,
    budget: RequestBudget,
    members: u64,
    /// The board's cut this process has taken or made (`cut_at`).
    seen_cut: Option<i64>,
}

impl Sharing {
    pub(crate) fn new(queue: Queue, worker: &str, account: &str, budget: RequestBudget) -> Self {
        Sharing {
            queue,
            worker: worker.to_string(),
            account: account.to_string(),
            budget,
            members: 1,
            seen_cut: None,
        }
    }

    /// Looks at the board once (see the module documentation).
    pub(crate) async fn sync(&mut self) -> lpdrop_jobs::Result<()> {
        let mut board = self.queue.pace_board(&self.account).await?;
        let members = board.members.max(1);
        if members != self.members {
            tracing::debug!(
                account = %self.account,
                processes = members,
                "the account's pace is shared by {members} worker process(es)"
            );
            self.members = members;
            self.budget
                .share_with(u32::try_from(members).unwrap_or(u32::MAX));
        }
        if let Some(own) = self.budget.take_cut() {
            // This process's pace is its share of the account's: the account's rate is that
            // times the processes (the limiter takes only half its estimate in the account's
            // first cut, measured on a burst they all sent at once). A paced cut is
            // measured on this process's share of the answers only, which is noisy, so it
            // lowers the account's rate by at most half in one round.
            let mut total = own * members as f64;
            if let Some(before) = board.rate_milli {
                total = total.max(before as f64 / 1000.0 * FLOOR);
            }
            let taken = self
                .queue
                .cut_pace(
                    &self.account,
                    &self.worker,
                    (total * 1000.0).round() as i64,
                    CUT_GAP,
                )
                .await?;
            board = self.queue.pace_board(&self.account).await?;
            if taken {
                // This process keeps its share of what it published, like the others.
                self.seen_cut = board.cut_at_ms;
                self.adopt(&board);
                return Ok(());
            }
        }
        if board.cut_at_ms > self.seen_cut {
            self.seen_cut = board.cut_at_ms;
            if board.cut_by.as_deref() != Some(self.worker.as_str()) {
                self.adopt(&board);
            }
        }
        Ok(())
    }

    fn adopt(&self, board: &PaceBoard) {
        if let Some(rate) = board.rate_milli {
            self.budget
                .adopt_rate(rate as f64 / 1000.0 / self.members as f64);
        }
    }

    /// Looks at the board every [`TICK`] ([`FIRST_TICK`] until a pace is found), for as long
    /// as the process runs.
    pub(crate) async fn run(mut self) {
        loop {
            let tick = if self.budget.rate().is_some() {
                TICK
            } else {
                FIRST_TICK
            };
            tokio::time::sleep(tick).await;
            if let Err(e) = self.sync().await {
                tracing::debug!(account = %self.account, "cannot read the pace board: {e}");
            }
        }
    }
}

/// The account's send schedule in the queue, for the budget's requests.
pub(crate) struct BoardSchedule {
    pub queue: Queue,
    pub account: String,
}

impl SharedSchedule for BoardSchedule {
    fn reserve(
        &self,
        interval: Duration,
    ) -> Pin<Box<dyn Future<Output = Option<Duration>> + Send + '_>> {
        Box::pin(async move {
            match self.queue.reserve_send(&self.account, interval).await {
                Ok(wait) => Some(wait),
                Err(e) => {
                    tracing::debug!(account = %self.account, "cannot reach the send schedule: {e}");
                    None
                }
            }
        })
    }
}
