//! The crate's one error style: a message says what failed, in this layer's
//! words, and never repeats its cause; the cause is the error's `source()`.
//! Printed with `{:#}` (anyhow, the CLI, run summaries) or through [`chain`]
//! (logs, journal notes), an error therefore names every cause exactly once:
//! `cannot read config file x.toml: No such file or directory (os error 2)`.
//! `tests/it/layers.rs` (`no_error_message_prints_its_source_twice`) keeps
//! messages from interpolating their own source.

use std::error::Error;
use std::fmt;

/// An error and its causes, joined by `: ` (what `{:#}` prints for an
/// `anyhow::Error`), for a log field or a stored note.
pub struct Chain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// [`Chain`] as a string.
pub fn chain(e: &dyn Error) -> String {
    Chain(e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("reading {path}")]
        Read {
            path: String,
            source: std::io::Error,
        },
    }

    #[test]
    fn every_cause_is_named_once() {
        let e = Outer::Read {
            path: "x.toml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(chain(&e), "reading x.toml: no such file");
        assert_eq!(
            format!("{:#}", anyhow::Error::from(e)),
            "reading x.toml: no such file"
        );
    }
}
