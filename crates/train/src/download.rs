//! How the `train` binary shows an MNIST download: a progress bar per file on a terminal, one plain
//! line per file otherwise (logs, CI), both on stderr.

use std::io::IsTerminal;

use data::{Event, LineProgress, Progress};
use indicatif::{ProgressBar, ProgressStyle};

/// The progress display for a download: plain lines when `plain` or when stderr is not a terminal.
pub fn download_progress(plain: bool) -> Box<dyn Progress> {
    if plain || !std::io::stderr().is_terminal() {
        Box::new(LineProgress(std::io::stderr()))
    } else {
        Box::new(DownloadBar::default())
    }
}

/// An `indicatif` bar for the file being fetched; the other events print the plain lines.
#[derive(Default)]
pub struct DownloadBar {
    bar: Option<ProgressBar>,
}

impl DownloadBar {
    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for DownloadBar {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start { file, size, .. } => {
                self.clear();
                let bar = match size {
                    Some(size) => ProgressBar::new(size).with_style(
                        ProgressStyle::with_template(
                            "{msg:28} [{bar:30}] {decimal_bytes:>8}/{decimal_total_bytes:8} {decimal_bytes_per_sec:>10} {eta:>3}",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    ),
                    None => ProgressBar::new_spinner().with_style(
                        ProgressStyle::with_template("{msg:28} {spinner} {decimal_bytes:>8} {decimal_bytes_per_sec:>10}")
                            .expect("a valid template"),
                    ),
                };
                bar.set_message(file.to_string());
                self.bar = Some(bar);
            }
            Event::Received { bytes } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(bytes);
                }
            }
            other => {
                self.clear();
                LineProgress(std::io::stderr()).event(other);
            }
        }
    }
}

impl Drop for DownloadBar {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both bar templates parse (a bad one would panic at the first download), with and without a
    /// known size, and a failure after a bar clears it.
    #[test]
    fn bars_start_with_and_without_a_size() {
        let mut bar = DownloadBar::default();
        for size in [Some(1_000), None] {
            bar.event(Event::Start {
                file: "t10k-labels-idx1-ubyte.gz",
                url: "http://127.0.0.1:1/t10k-labels-idx1-ubyte.gz",
                size,
            });
            bar.event(Event::Received { bytes: 500 });
            assert_eq!(bar.bar.as_ref().map(ProgressBar::position), Some(500));
        }
        bar.event(Event::Done {
            cache: std::path::Path::new("/tmp"),
            bytes: 0,
        });
        assert!(bar.bar.is_none());
    }
}
