//! Standard output and error that never panic when nobody reads them any
//! more (`lookout 2>&1 | head -1`, a log collector that died, `lookout token
//! list | head -1`).
//!
//! `println!` and `eprintln!` panic when a write fails, and so does the log:
//! tracing's formatter reports a failed write with `eprintln!`, which panics
//! when stderr is the same closed pipe. A panic kills the task that logged:
//! a closed pipe stopped motion analysis after a few frames, and SIGTERM went
//! unanswered because the signal task logged before it cancelled. Here a log
//! line that cannot be written is dropped and counted ([`lost_log_lines`]),
//! and the count is written once the log works again; messages for the user
//! ([`say`]) are dropped silently; listings ([`print_line`]) tell the caller
//! that the reader has gone, so it can stop quietly as `ls | head` does.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

/// Log lines that could not be written since start.
pub fn lost_log_lines() -> u64 {
    LOG.lost.load(Ordering::Relaxed)
}

/// The log's counters (one per process, like stdout itself).
static LOG: Counts = Counts::new();

/// Lines lost, and those not yet reported in the log.
struct Counts {
    lost: AtomicU64,
    unreported: AtomicU64,
}

impl Counts {
    const fn new() -> Counts {
        Counts {
            lost: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
        }
    }

    /// Writes one formatted log line to `out`, first saying how many were
    /// lost since the last line that got through; a failure is counted,
    /// never returned (the log cannot report its own failure).
    fn write_line(&self, out: &mut impl Write, line: &[u8]) {
        let unreported = self.unreported.load(Ordering::Relaxed);
        if unreported > 0 {
            let note = format!(
                "lookout: {unreported} log line(s) could not be written and were dropped\n"
            );
            if out
                .write_all(note.as_bytes())
                .and_then(|()| out.flush())
                .is_ok()
            {
                self.unreported.fetch_sub(unreported, Ordering::Relaxed);
            }
        }
        if out.write_all(line).and_then(|()| out.flush()).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
            self.unreported.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The log's writer (tracing-subscriber's `MakeWriter`): stdout, where
/// failures are dropped and counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine
    }
}

/// One log event on its way to stdout (the formatter writes each event whole).
#[derive(Debug)]
pub struct LogLine;

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        LOG.write_line(&mut io::stdout().lock(), buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A message for the user on stderr, plus a newline; dropped if stderr
/// cannot be written.
pub fn say(message: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(message).and_then(|()| err.write_all(b"\n"));
}

/// A prompt on stderr, without a newline; dropped if stderr cannot be
/// written.
pub fn prompt(message: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(message).and_then(|()| err.flush());
}

/// One line of a command's output on stdout. `Ok(false)` when the reader
/// has gone (a closed pipe): the caller stops, quietly. Other failures (a
/// full disk under a redirect) are errors.
pub fn print_line(line: fmt::Arguments<'_>) -> io::Result<bool> {
    let mut out = io::stdout().lock();
    match out
        .write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

/// `text` with control and other unprintable characters escaped (`\u{1b}`,
/// `\n`), so a stored name cannot drive the terminal or forge a line.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            // Printable, but `escape_debug` would escape them.
            '\\' | '"' | '\'' => c.to_string(),
            _ => c.escape_debug().to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails while `broken`.
    struct Pipe {
        broken: bool,
        got: Vec<u8>,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.broken {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lost_lines_are_counted_and_reported_once_writing_works() {
        let counts = Counts::new();
        let mut pipe = Pipe {
            broken: true,
            got: Vec::new(),
        };
        for _ in 0..3 {
            counts.write_line(&mut pipe, b"a line\n");
        }
        assert_eq!(counts.lost.load(Ordering::Relaxed), 3);
        pipe.broken = false;
        counts.write_line(&mut pipe, b"back\n");
        counts.write_line(&mut pipe, b"again\n");
        assert_eq!(
            String::from_utf8(pipe.got).unwrap(),
            "lookout: 3 log line(s) could not be written and were dropped\nback\nagain\n"
        );
        assert_eq!(counts.lost.load(Ordering::Relaxed), 3, "a total");
        assert_eq!(counts.unreported.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn unprintable_characters_are_escaped() {
        assert_eq!(printable("home-assistant"), "home-assistant");
        assert_eq!(
            printable("a\x1b[2J\nb\tc\u{7}\u{202e}"),
            r"a\u{1b}[2J\nb\tc\u{7}\u{202e}"
        );
        assert_eq!(printable(r#"q"\'"#), r#"q"\'"#);
        assert_eq!(printable("café"), "café");
    }
}
