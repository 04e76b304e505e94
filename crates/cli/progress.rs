//! Progress bars for long runs, on a terminal only: nothing is drawn when stderr is not a
//! terminal (cron, containers, CI, pipes) or with `--quiet`, so logs stay clean there.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet`: no progress bars.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Bars are drawn only for a person watching a terminal.
pub fn enabled() -> bool {
    !QUIET.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// Progress through a time window (sync): the bar is the share of the window's time already
/// paged, which is what the ETA is computed from.
pub struct WindowProgress {
    bar: Option<ProgressBar>,
    from_ms: i64,
}

use lpdrop_pipeline::Counts;

impl WindowProgress {
    /// `what` names the records (conversations, chats).
    pub fn new(what: &'static str, from_ms: i64, to_ms: i64) -> Self {
        let bar = enabled().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(u64::try_from((to_ms - from_ms).max(1) / 1000).unwrap_or(1).max(1)),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} [{{elapsed_precise}}] [{{bar:30.cyan/blue}}] {{percent:>3}}% of the window, \
                     {{msg}} {what}, ETA {{eta}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        WindowProgress { bar, from_ms }
    }

    /// Everything before `covered_ms` has been paged.
    pub fn update(&self, covered_ms: i64, counts: Counts) {
        let Some(bar) = &self.bar else { return };
        let done = u64::try_from((covered_ms - self.from_ms).max(0) / 1000).unwrap_or(0);
        bar.set_position(done.min(bar.length().unwrap_or(done)));
        let secs = bar.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{} sub-windows, {} pages, {:.1} MB of JSON, {:.0}/s {}",
            counts.windows,
            counts.pages,
            counts.input_bytes as f64 / 1e6,
            counts.records as f64 / secs,
            counts.records,
        ));
    }

    /// Removes the bar (the summary that follows says the rest).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Progress through a known number of items (files for convert, jobs for a worker run).
pub struct CountProgress {
    bar: Option<ProgressBar>,
}

/// The pipeline's progress on a terminal: a window bar for searches, a page bar for saved
/// pages; nothing when bars are off.
#[derive(Default)]
pub struct TerminalProgress {
    bar: std::sync::Mutex<Option<Bar>>,
    started: std::sync::OnceLock<std::time::Instant>,
}

enum Bar {
    Window(WindowProgress),
    Pages(CountProgress),
}

impl TerminalProgress {
    fn set(&self, bar: Bar) {
        let _ = self.started.set(std::time::Instant::now());
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }
}

impl lpdrop_pipeline::Progress for TerminalProgress {
    fn begin_window(&self, what: &'static str, from_ms: i64, to_ms: i64) {
        self.set(Bar::Window(WindowProgress::new(what, from_ms, to_ms)));
    }

    fn begin_pages(&self, total: Option<u64>) {
        self.set(Bar::Pages(CountProgress::new("pages", total.unwrap_or(0))));
    }

    fn update(&self, position: i64, counts: Counts) {
        match &*self.bar.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(Bar::Window(bar)) => bar.update(position, counts),
            Some(Bar::Pages(bar)) => {
                let secs = self
                    .started
                    .get()
                    .map_or(1e-3, |t| t.elapsed().as_secs_f64().max(1e-3));
                bar.update(
                    position.max(0) as u64,
                    format!(
                        "{} conversations, {:.0} MB/s",
                        counts.records,
                        counts.input_bytes as f64 / 1e6 / secs
                    ),
                );
            }
            None => {}
        }
    }

    fn finish(&self) {
        match &*self.bar.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(Bar::Window(bar)) => bar.finish(),
            Some(Bar::Pages(bar)) => bar.finish(),
            None => {}
        }
    }
}

impl CountProgress {
    pub fn new(what: &'static str, total: u64) -> Self {
        let bar = enabled().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} [{{elapsed_precise}}] [{{bar:30.cyan/blue}}] {{pos}}/{{len}} {what}, \
                     {{msg}} ETA {{eta}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        CountProgress { bar }
    }

    pub fn update(&self, done: u64, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(message);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
