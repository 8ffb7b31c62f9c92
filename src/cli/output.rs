//! Progress reporting on stderr.

use indicatif::{ProgressBar, ProgressStyle};

use crate::records::Progress;

impl Progress for ProgressBar {
    fn start(&self, total: u64) {
        self.reset();
        self.set_length(total);
    }

    fn advance(&self, n: u64) {
        self.inc(n);
    }
}

/// A progress bar on stderr for `len` items; hidden for short runs and when stderr is not a terminal.
pub fn progress(len: usize, what: &str) -> ProgressBar {
    if len < 20 {
        return ProgressBar::hidden();
    }
    let bar = progress_of_unknown_length(what);
    bar.set_length(len as u64);
    bar
}

/// A progress bar whose length the work sets once it knows it.
pub fn progress_of_unknown_length(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_owned());
    bar
}
