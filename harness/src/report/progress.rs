//! Progress of a long experiment on stderr: a bar with the elapsed time and an ETA on a terminal
//! (indicatif, which redraws in place at a bounded rate), one plain line per step elsewhere (a CI
//! log keeps every line, and escape sequences would only clutter it), nothing when quiet.
//!
//! The unit is one scenario round (every arm of one scenario once). The total is what the caller
//! plans for this batch; adaptive sampling plans one batch per look, so the ETA is that look's.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How far an experiment is; see the module documentation.
pub struct Progress {
    inner: Inner,
}

enum Inner {
    Quiet,
    /// Plain lines `[step/total] message (elapsed s)` to a writer (stderr, or a buffer in tests).
    Lines {
        total: u64,
        done: Mutex<u64>,
        out: Mutex<Box<dyn Write + Send>>,
        started: std::time::Instant,
    },
    Bar(ProgressBar),
}

/// The bar: message, bar, count, elapsed, ETA (indicatif's template language).
const BAR_TEMPLATE: &str = "{msg:32!} [{bar:30}] {pos}/{len} scenario rounds, {elapsed} elapsed, ETA {eta}";

impl Progress {
    /// Progress over `total` steps on stderr: a bar if stderr is a terminal, plain lines
    /// otherwise, nothing if `quiet`.
    pub fn new(total: u64, quiet: bool) -> Progress {
        if quiet {
            Progress { inner: Inner::Quiet }
        } else if std::io::stderr().is_terminal() {
            Progress::bar(total, ProgressDrawTarget::stderr())
        } else {
            Progress::lines(total, Box::new(std::io::stderr()))
        }
    }

    /// Plain lines to `out`.
    pub fn lines(total: u64, out: Box<dyn Write + Send>) -> Progress {
        Progress {
            inner: Inner::Lines {
                total,
                done: Mutex::new(0),
                out: Mutex::new(out),
                started: std::time::Instant::now(),
            },
        }
    }

    /// A bar drawn to `target`.
    pub fn bar(total: u64, target: ProgressDrawTarget) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), target);
        // The template is a constant: it parses, or the unit test below fails.
        if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { inner: Inner::Bar(bar) }
    }

    /// A step begins: shows `message` (what runs now).
    pub fn step(&self, message: &str) {
        match &self.inner {
            Inner::Quiet => {}
            Inner::Lines { total, done, out, started } => {
                let done = *done.lock().unwrap_or_else(|p| p.into_inner());
                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                let secs = started.elapsed().as_secs_f64();
                // Progress is best effort: a closed stderr must not stop the experiment.
                let _ = writeln!(out, "[{}/{total}] {message} ({secs:.0} s)", done + 1);
            }
            Inner::Bar(bar) => bar.set_message(message.to_owned()),
        }
    }

    /// A step ended.
    pub fn inc(&self) {
        match &self.inner {
            Inner::Quiet => {}
            Inner::Lines { done, .. } => *done.lock().unwrap_or_else(|p| p.into_inner()) += 1,
            Inner::Bar(bar) => bar.inc(1),
        }
    }

    /// Steps done so far.
    pub fn position(&self) -> u64 {
        match &self.inner {
            Inner::Quiet => 0,
            Inner::Lines { done, .. } => *done.lock().unwrap_or_else(|p| p.into_inner()),
            Inner::Bar(bar) => bar.position(),
        }
    }

    /// The batch is over (possibly early: a deadline, retired scenarios): the bar stops where it
    /// is and keeps its line.
    pub fn finish(&self) {
        if let Inner::Bar(bar) = &self.inner {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A writer whose bytes the test can read afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn progress_lines_count_steps_without_escape_sequences() {
        let sink = Shared::default();
        let p = Progress::lines(3, Box::new(sink.clone()));
        for name in ["codec round 1", "http_parse round 1"] {
            p.step(name);
            p.inc();
        }
        p.finish();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("[1/3] codec round 1 (") && lines[0].ends_with(" s)"), "{text}");
        assert!(lines[1].starts_with("[2/3] http_parse round 1 ("), "{text}");
        assert!(!text.contains('\x1b'), "no escape sequences in a log: {text:?}");
        assert_eq!(p.position(), 2);
    }

    #[test]
    fn progress_bar_template_parses_and_counts() {
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
        let p = Progress::bar(4, ProgressDrawTarget::hidden());
        p.step("codec round 1");
        p.inc();
        p.inc();
        assert_eq!(p.position(), 2);
        let quiet = Progress::new(4, true);
        quiet.step("x");
        quiet.inc();
        assert_eq!(quiet.position(), 0);
    }
}
