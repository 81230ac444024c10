//! The demo's progress on stderr: a spinner while a step runs (drawn only on a terminal), then
//! one line per step, `[  total s] step  what happened (step s)`.

use std::time::Instant;

use indicatif::ProgressBar;

/// Progress on stderr: a spinner while a step runs (on a terminal), then one line per step
/// with its duration.
pub struct Progress {
    started: Instant,
}

/// A step in progress.
pub struct Step {
    bar: ProgressBar,
    name: &'static str,
    started: Instant,
}

impl Progress {
    /// Starts the clock.
    pub fn new() -> Self {
        Progress {
            started: Instant::now(),
        }
    }

    /// A line of its own.
    pub fn note(&self, line: &str) {
        eprintln!("{line}");
    }

    /// Starts step `name`, doing `doing` (the spinner's message).
    pub fn step(&self, name: &'static str, doing: impl Into<String>) -> Step {
        let bar = crate::util::spinner(format!("{name}: {}", doing.into()));
        Step {
            bar,
            name,
            started: Instant::now(),
        }
    }
}

impl Step {
    /// What the step is doing now.
    pub fn set(&self, doing: impl Into<String>) {
        self.bar
            .set_message(format!("{}: {}", self.name, doing.into()));
    }

    /// Ends the step with its line.
    pub fn done(self, progress: &Progress, line: impl AsRef<str>) {
        self.bar.finish_and_clear();
        eprintln!(
            "[{:>6.1}s] {:<13} {} ({:.1} s)",
            progress.started.elapsed().as_secs_f64(),
            self.name,
            line.as_ref(),
            self.started.elapsed().as_secs_f64()
        );
    }
}
