//! One check's outcome, as `lookout doctor` prints it: the checks beside
//! this file make them, the runner above prints them.

use std::fmt;

use crate::console::printable;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Ok,
    /// lookout runs, but something is worth fixing.
    Warn,
    /// lookout will not start, or this part will not work.
    Fail,
    /// Not checked: not configured, or it depends on a check that failed.
    Skip,
}

/// One check's outcome, as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// How it came out.
    pub status: Status,
    /// What was checked and found, and for a failure what to do.
    pub text: String,
}

impl Check {
    pub(crate) fn new(status: Status, text: impl Into<String>) -> Check {
        Check {
            status,
            text: text.into(),
        }
    }

    /// A check that passed.
    pub fn ok(text: impl Into<String>) -> Check {
        Check::new(Status::Ok, text)
    }

    /// A warning: lookout runs.
    pub fn warn(text: impl Into<String>) -> Check {
        Check::new(Status::Warn, text)
    }

    /// A failure.
    pub fn fail(text: impl Into<String>) -> Check {
        Check::new(Status::Fail, text)
    }

    /// Not checked.
    pub fn skip(text: impl Into<String>) -> Check {
        Check::new(Status::Skip, text)
    }
}

impl fmt::Display for Check {
    /// `ok    data directory ...`: the status in a column of six.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.status {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        write!(f, "{label:<6}{}", printable(&self.text))
    }
}
