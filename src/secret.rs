//! A wrapper for credentials that never prints them.
//!
//! `Secret` is what every key, token and password in the configuration is
//! stored as. `Debug` and `Display` print `***`, it serialises as `***`, and
//! comparisons against untrusted input run in constant time.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use subtle::ConstantTimeEq;

/// A secret string (API key, token, password inside a database URL).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for the one place that must send it (a header, a body field).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with a candidate received from outside.
    ///
    /// An empty configured secret never matches: an endpoint without a key is closed.
    pub fn matches(&self, candidate: &str) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let a = self.0.as_bytes();
        let b = candidate.as_bytes();
        // Length is compared in constant time too, and the content comparison
        // always runs over the configured key's length.
        let len_eq = (a.len() as u64).ct_eq(&(b.len() as u64));
        let mut padded = vec![0u8; a.len()];
        for (i, byte) in b.iter().take(a.len()).enumerate() {
            padded[i] = *byte;
        }
        (len_eq & a.ct_eq(&padded[..])).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// A string, or an integer taken as its digits (a numeric key written
    /// without quotes). Any other value is refused with an error that does
    /// not show it.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom(HIDDEN))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom(HIDDEN))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
                Err(serde::de::Error::custom(HIDDEN))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
                Err(serde::de::Error::custom(HIDDEN))
            }
        }
        d.deserialize_any(V)
    }
}

/// The error for a secret of the wrong type: it says what is expected, never the value.
const HIDDEN: &str = "expected a string (the value is a secret and is not shown)";

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl From<&str> for Secret {
    fn from(v: &str) -> Self {
        Secret(v.to_string())
    }
}

impl From<String> for Secret {
    fn from(v: String) -> Self {
        Secret(v)
    }
}

/// Replaces the passwords of a database URL with `***`: the one in the
/// user info (`scheme://user:pass@host/db`, found by the last `@` before the
/// host, so a password holding `/`, `?`, `#` or `@` is covered whole) and
/// `password=` / `pass=` / `pwd=` query parameters.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_query(url);
    };
    let scheme = &url[..scheme_end];
    let rest = &url[scheme_end + 3..];
    // The user info ends at the last `@`: a password may hold `/`, `?`, `#`,
    // even `@`. (An `@` in the query string makes this hide too much, never
    // too little.)
    let (userinfo, host_and_rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut out = format!("{scheme}://");
    if let Some(userinfo) = userinfo {
        match userinfo.find(':') {
            Some(colon) => {
                out.push_str(&userinfo[..colon]);
                out.push_str(":***");
            }
            None => out.push_str(userinfo),
        }
        out.push('@');
    }
    out.push_str(&redact_query(host_and_rest));
    out
}

/// `password=…` style query parameters replaced by `***`.
fn redact_query(text: &str) -> String {
    let Some(q) = text.find('?') else {
        return text.to_string();
    };
    let (head, query) = text.split_at(q + 1);
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _))
                if ["password", "pass", "pwd", "passwd", "sslpassword"]
                    .contains(&k.to_ascii_lowercase().as_str()) =>
            {
                format!("{k}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}{}", redacted.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert!(!format!("{s:?}{s}").contains("hunter2"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
    }

    #[test]
    fn matches_is_exact() {
        let s = Secret::new("abc");
        assert!(s.matches("abc"));
        assert!(!s.matches("ab"));
        assert!(!s.matches("abcd"));
        assert!(!s.matches("abd"));
        assert!(!s.matches(""));
        assert!(!Secret::default().matches(""));
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://bob:pa55@db:5432/shop"),
            "postgres://bob:***@db:5432/shop"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(
            redact_url("mysql://root@127.0.0.1/test"),
            "mysql://root@127.0.0.1/test"
        );
    }

    #[test]
    fn query_passwords_and_odd_characters_are_redacted() {
        for (url, secret) in [
            ("postgres://db/shop?user=bob&password=s3cr3t", "s3cr3t"),
            (
                "postgres://db/shop?sslmode=require&PASSWORD=s3cr3t&x=1",
                "s3cr3t",
            ),
            ("mysql://bob:pa/ss@db:3306/shop", "pa/ss"),
            ("mysql://bob:pa?ss@db:3306/shop", "pa?ss"),
            ("mysql://bob:pa#ss@db:3306/shop", "pa#ss"),
            ("postgres://bob:p@ss@db/shop", "p@ss"),
        ] {
            let r = redact_url(url);
            assert!(!r.contains(secret), "{url} → {r}");
            assert!(r.contains("***"), "{url} → {r}");
        }
        assert_eq!(
            redact_url("postgres://bob:pa/ss@db:5432/shop?sslmode=require"),
            "postgres://bob:***@db:5432/shop?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/shop?password=x&sslmode=require"),
            "postgres://db/shop?password=***&sslmode=require"
        );
    }

    #[test]
    fn numeric_secrets_deserialise_and_bad_types_hide_the_value() {
        let s: Secret = serde_json::from_str("12345").unwrap();
        assert_eq!(s.expose(), "12345");
        let e = serde_json::from_str::<Secret>("true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not shown") && !e.contains("true"), "{e}");
        let e = serde_json::from_str::<Secret>("12.5")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("12.5"), "{e}");
    }
}
