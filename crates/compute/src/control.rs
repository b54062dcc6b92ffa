//! How a running kernel is told to stop, and how it reports progress.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Why a kernel stopped before finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Cancelled,
    TimeBudgetExceeded,
}

type ProgressFn = dyn Fn(f64) + Send + Sync;
type StageFn = dyn Fn(&str) + Send + Sync;

/// Handed to a kernel: it calls [`Control::check`] at its checkpoints (at least
/// every few milliseconds of work) and [`Control::progress`] when it knows how far
/// it has come.
#[derive(Clone, Default)]
pub struct Control {
    cancelled: Arc<AtomicBool>,
    deadline: Option<Instant>,
    progress: Option<Arc<ProgressFn>>,
    stage: Option<Arc<StageFn>>,
}

impl Control {
    /// A control that never stops and reports nowhere.
    pub fn unlimited() -> Self {
        Self::default()
    }

    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub fn with_cancel_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancelled = flag;
        self
    }

    pub fn with_progress(mut self, f: impl Fn(f64) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    pub fn with_stage(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.stage = Some(Arc::new(f));
        self
    }

    /// The flag that [`Control::cancel`] sets, for another thread to hold.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancelled)
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// `Err` once the kernel must stop.
    pub fn check(&self) -> Result<(), Stop> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Stop::TimeBudgetExceeded),
            _ => Ok(()),
        }
    }

    /// The same control (cancel flag, deadline, stage) for one part of the
    /// work: its progress 0..=1 is reported as `lo..=hi` of the whole.
    pub fn part(&self, lo: f64, hi: f64) -> Control {
        let mut part = self.clone();
        if let Some(f) = self.progress.clone() {
            part.progress = Some(Arc::new(move |x: f64| f(lo + (hi - lo) * x)));
        }
        part
    }

    /// Reports progress in 0..=1.
    pub fn progress(&self, fraction: f64) {
        if let Some(f) = &self.progress {
            f(fraction.clamp(0.0, 1.0));
        }
    }

    /// Says, in words a person can follow, what the kernel is doing now
    /// ("ECM p25: 120 of 272 curves").
    pub fn stage(&self, text: &str) {
        if let Some(f) = &self.stage {
            f(text);
        }
    }

    /// Whether anyone listens to [`Control::stage`] (so that a kernel can skip
    /// formatting text nobody reads).
    pub fn wants_stage(&self) -> bool {
        self.stage.is_some()
    }
}

/// Work done out of a known total, reported as progress by threads that
/// finish parts in any order: the sum and the report happen under one lock,
/// so the reports reach the control in increasing order.
pub struct Tally<'a> {
    ctl: &'a Control,
    total: f64,
    done: std::sync::Mutex<f64>,
}

impl<'a> Tally<'a> {
    pub fn new(ctl: &'a Control, total: f64) -> Self {
        Tally { ctl, total: total.max(f64::MIN_POSITIVE), done: std::sync::Mutex::new(0.0) }
    }

    /// Adds `amount` of work done and reports the fraction.
    pub fn add(&self, amount: f64) {
        if let Ok(mut done) = self.done.lock() {
            *done += amount;
            self.ctl.progress(*done / self.total);
        }
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("cancelled", &self.cancelled.load(Ordering::Relaxed))
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
