//! `--timings` and the terminal's spinner: the wall time of each stage and the stage last
//! finished. Must not affect any result.

use std::path::Path;

/// Wall time per stage, in the order the stages ran (`--timings`), and on a terminal a spinner
/// on stderr naming the file and the last stage finished, so that a stage taking seconds (reading
/// millions of rows, the design pass, the fit) is never silent. The spinner stops when the fit's
/// inference starts: Monte Carlo draws and bootstrap replicates draw their own bars.
#[derive(Debug, Default)]
pub(super) struct Timings {
    pub(super) stages: Vec<(String, f64)>,
    pub(super) last: Option<std::time::Instant>,
    pub(super) spinner: Option<indicatif::ProgressBar>,
    pub(super) file: String,
}

impl Drop for Timings {
    fn drop(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }
}

impl Timings {
    /// Measuring from now when `measure` (`--timings`), else only the spinner's messages.
    pub(super) fn new(measure: bool) -> Self {
        let mut timings = Timings::default();
        if measure {
            timings.last = Some(std::time::Instant::now());
        }
        timings
    }
    /// With `progress` (stderr is a terminal), the spinner for `file`.
    pub(super) fn with_spinner(mut self, file: &Path, progress: bool) -> Self {
        if progress {
            let spinner = indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            self.file = file.display().to_string();
            spinner.set_message(format!("{}: reading", self.file));
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            self.spinner = Some(spinner);
        }
        self
    }

    /// Close the stage that ran since the previous lap.
    pub(super) fn lap(&mut self, stage: impl Into<String>) {
        let stage = stage.into();
        if stage.starts_with("df") || stage.starts_with("assemble") {
            if let Some(spinner) = self.spinner.take() {
                spinner.finish_and_clear();
            }
        } else if let Some(spinner) = &self.spinner {
            spinner.set_message(format!("{}: {stage} done", self.file));
        }
        let now = std::time::Instant::now();
        if let Some(last) = self.last {
            self.stages
                .push((stage, now.duration_since(last).as_secs_f64()));
        }
        self.last = Some(now);
    }
}
