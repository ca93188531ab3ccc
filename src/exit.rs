//! The process exit codes, one type with one mapping.
//!
//! systemd units and cron wrappers rely on them (README "Exit codes"): `1` is
//! not a failure, it means a person has discrepancies to look at.

/// How a `sverka` invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Exit {
    /// Everything agreed, or every discrepancy was corrected.
    Clean = 0,
    /// Discrepancies are left for a person (reports written).
    Discrepancies = 1,
    /// The run failed: an error, an unreachable source, a safety guard, or a
    /// job that was already running.
    Failed = 2,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The worst of several outcomes (a failure beats discrepancies beats
    /// clean); `Clean` for none.
    pub fn worst(codes: impl IntoIterator<Item = Exit>) -> Exit {
        codes.into_iter().max().unwrap_or(Exit::Clean)
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

impl std::process::Termination for Exit {
    fn report(self) -> std::process::ExitCode {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_numbers_and_the_worst_wins() {
        assert_eq!(
            [Exit::Clean, Exit::Discrepancies, Exit::Failed].map(Exit::code),
            [0, 1, 2]
        );
        assert_eq!(
            Exit::worst([Exit::Clean, Exit::Discrepancies]),
            Exit::Discrepancies
        );
        assert_eq!(Exit::worst([Exit::Failed, Exit::Clean]), Exit::Failed);
        assert_eq!(Exit::worst([]), Exit::Clean);
    }
}
