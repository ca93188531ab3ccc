//! Liberal parsing for the vendors' sloppy JSON: trailing commas, ids as
//! strings or numbers, `{}` or `[]` where the other is documented, numbers in
//! strings. Everything sverka *sends* stays strict.

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::Value;

/// Parses JSON that may contain trailing commas before `}` or `]`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(first) => {
            let cleaned = strip_trailing_commas(text);
            if cleaned.len() == text.len() {
                return Err(first);
            }
            serde_json::from_str(&cleaned)
        }
    }
}

/// Parses bytes like [`from_str`]; invalid UTF-8 is an error.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(s) => from_str(s.trim_start_matches('\u{feff}')),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Removes commas that are followed (after whitespace) by `}` or `]`,
/// leaving string contents untouched.
pub fn strip_trailing_commas(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if b == b',' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < bytes.len() && (bytes[j] == b'}' || bytes[j] == b']') {
                // drop the comma
            } else {
                out.push(b);
            }
        } else {
            out.push(b);
        }
        i += 1;
    }
    // Only ASCII bytes were removed, so the result is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Renders a JSON scalar as the string id it stands for (`12` and `"12"` → `"12"`).
pub fn value_to_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

/// Reads an integer from a number, a numeric string or a float with no fraction.
pub fn value_to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
        }
        Value::Bool(b) => Some(*b as i64),
        _ => None,
    }
}

/// Reads a stock count strictly: a non-negative integer given as a number, a
/// numeric string or a float with no fraction that an `i64` holds exactly.
///
/// Anything else (null, `""`, text, a negative number, a fraction, a number
/// beyond ±2^53 given as a float, an overflow) is `None`: a count sverka
/// cannot read, never a clamped or wrapped one.
pub fn value_to_count(v: &Value) -> Option<i64> {
    /// The largest integer an `f64` holds exactly.
    const EXACT_F64: f64 = 9_007_199_254_740_992.0;
    let from_f64 =
        |f: f64| (f.is_finite() && f.fract() == 0.0 && f.abs() <= EXACT_F64).then_some(f as i64);
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            if n.is_u64() {
                None // beyond i64
            } else {
                n.as_f64().and_then(from_f64)
            }
        }),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                None
            } else {
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(from_f64))
            }
        }
        _ => None,
    }?;
    (n >= 0).then_some(n)
}

/// Reads a float from a number or a numeric string (`"1,5"` too).
pub fn value_to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', ".").parse().ok(),
        _ => None,
    }
}

/// serde: an id given as a string or a number, always kept as `String`.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_id(&v).ok_or_else(|| de::Error::custom(format!("expected an id, got {v}")))
}

/// serde: an optional id (string, number or null).
pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(value_to_id).filter(|s| !s.is_empty()))
}

/// serde: an optional id (string, number or null) where `""` stays `Some("")`.
pub fn opt_id_keep_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(value_to_id))
}

/// serde: a string given as a string, a number or null (missing, null and `""` are `""`).
pub fn id_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_id(d)?.unwrap_or_default())
}

/// serde: an optional float given as a number, a string or null (unreadable is None).
pub fn opt_float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(value_to_f64))
}

/// serde: an integer given as a number or a string.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_i64(&v).ok_or_else(|| de::Error::custom(format!("expected an integer, got {v}")))
}

/// serde: an optional integer given as a number, a string, `""` or null.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(value_to_i64))
}

/// serde: a float given as a number or a string.
pub fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_f64(&v).ok_or_else(|| de::Error::custom(format!("expected a number, got {v}")))
}

/// serde: a list that PHP may send as `{}` (empty), `[]`, null, or a map keyed
/// by id (the values are taken in the order of their keys, as a JSON object
/// read into [`Value`] orders them; a repeated key keeps its last value).
/// Each item is read straight from the answer, without a [`Value`] between.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct List<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> de::Visitor<'de> for List<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list (an array, an object keyed by id, or null)")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Vec<T>, D2::Error> {
            d.deserialize_any(self)
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }

        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<T>, A::Error> {
            let mut entries: Vec<(String, T)> = Vec::new();
            while let Some(entry) = map.next_entry::<String, T>()? {
                entries.push(entry);
            }
            // Key order, the last of a repeated key: what a `Value` object holds.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out: Vec<(String, T)> = Vec::with_capacity(entries.len());
            for (key, item) in entries {
                match out.last_mut() {
                    Some(last) if last.0 == key => last.1 = item,
                    _ => out.push((key, item)),
                }
            }
            Ok(out.into_iter().map(|(_, item)| item).collect())
        }
    }

    d.deserialize_option(List(std::marker::PhantomData))
}

/// serde: a bool sent as `true`/`false`, `1`/`0` or `"1"`/`"0"`/`"true"`.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Bool(b)) => b,
        Some(Value::Number(n)) => n.as_f64().map(|f| f != 0.0).unwrap_or(false),
        Some(Value::String(s)) => matches!(s.trim(), "1" | "true" | "yes" | "Y" | "y"),
        _ => false,
    })
}

/// serde `with` modules for optional fields that are read leniently and
/// written as they are: `#[serde(default, skip_serializing_if =
/// "Option::is_none", with = "opt::text")]`.
pub mod opt {
    use serde::{Deserializer, Serialize, Serializer};

    /// Writes an optional value as it is (`with` needs a writer).
    fn write<T: Serialize, S: Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }

    /// A text given as a string, a number or null; `""` stays `Some("")`.
    pub mod text {
        use super::*;

        /// serde: written as it is.
        pub fn serialize<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
            write(value, s)
        }

        /// serde: read like [`crate::lenient::opt_id_keep_empty`].
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
            crate::lenient::opt_id_keep_empty(d)
        }
    }

    /// An integer given as a number, a string, `""` or null (unreadable is None).
    pub mod int {
        use super::*;

        /// serde: written as it is.
        pub fn serialize<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            write(value, s)
        }

        /// serde: read like [`crate::lenient::opt_int`].
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            crate::lenient::opt_int(d)
        }
    }

    /// A float given as a number, a string or null (unreadable is None).
    pub mod float {
        use super::*;

        /// serde: written as it is.
        pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
            write(value, s)
        }

        /// serde: read like [`crate::lenient::opt_float`].
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
            crate::lenient::opt_float(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "list")]
        items: Vec<Item>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Item {
        #[serde(deserialize_with = "id")]
        code: String,
    }

    #[test]
    fn lists_read_alike_from_text_and_from_a_value_tree() {
        let read = |text: &str| -> Vec<String> {
            let direct: Holder = serde_json::from_str(text).expect(text);
            let tree: Holder =
                serde_json::from_value(serde_json::from_str::<Value>(text).expect(text))
                    .expect(text);
            assert_eq!(direct, tree, "{text}");
            direct.items.into_iter().map(|i| i.code).collect()
        };
        assert_eq!(read(r#"{"items":[{"code":"b"},{"code":1}]}"#), ["b", "1"]);
        // PHP's map keyed by id: in key order, a repeated key keeping its last value.
        assert_eq!(
            read(r#"{"items":{"5":{"code":"five"},"10":{"code":"ten"},"5":{"code":"5b"}}}"#),
            ["ten", "5b"]
        );
        for empty in [
            r#"{"items":null}"#,
            r#"{"items":[]}"#,
            r#"{"items":{}}"#,
            "{}",
        ] {
            assert!(read(empty).is_empty(), "{empty}");
        }
        for bad in [
            r#"{"items":"x"}"#,
            r#"{"items":3}"#,
            r#"{"items":[{"nocode":1}]}"#,
        ] {
            assert!(serde_json::from_str::<Holder>(bad).is_err(), "{bad}");
            let tree = serde_json::from_str::<Value>(bad).expect(bad);
            assert!(serde_json::from_value::<Holder>(tree).is_err(), "{bad}");
        }
    }

    #[test]
    fn trailing_commas_are_accepted() {
        let v: Value = from_str(r#"{"a": [1, 2, ], "b": {"c": "x,}", }, }"#).unwrap();
        assert_eq!(v["a"], serde_json::json!([1, 2]));
        assert_eq!(v["b"]["c"], "x,}");
    }

    #[test]
    fn strict_json_is_untouched() {
        let v: Value = from_str(r#"{"a":"b\",]"}"#).unwrap();
        assert_eq!(v["a"], "b\",]");
    }

    #[test]
    fn broken_json_still_fails() {
        assert!(from_str::<Value>("{\"a\": ").is_err());
    }

    #[derive(Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "id")]
        id: String,
        #[serde(deserialize_with = "int")]
        n: i64,
        #[serde(default, deserialize_with = "list")]
        items: Vec<i64>,
        #[serde(default, deserialize_with = "boolean")]
        flag: bool,
    }

    #[test]
    fn ids_and_lists_are_lenient() {
        let a: Sample = from_str(r#"{"id": 12, "n": "3", "items": {}, "flag": "1"}"#).unwrap();
        assert_eq!(
            (a.id.as_str(), a.n, a.items.len(), a.flag),
            ("12", 3, 0, true)
        );
        let b: Sample = from_str(r#"{"id": "A-1", "n": 4.0, "items": {"7": 7, "8": 8}}"#).unwrap();
        assert_eq!(
            (b.id.as_str(), b.n, b.items, b.flag),
            ("A-1", 4, vec![7, 8], false)
        );
    }

    #[derive(Debug, PartialEq, Deserialize, serde::Serialize)]
    struct Optional {
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
        int: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::float")]
        float: Option<f64>,
    }

    #[test]
    fn optional_fields_are_read_leniently_and_written_as_they_are() {
        let a: Optional = from_str(r#"{"text": 12, "int": "7", "float": "1,5"}"#).unwrap();
        assert_eq!(
            a,
            Optional {
                text: Some("12".into()),
                int: Some(7),
                float: Some(1.5)
            }
        );
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({"text": "12", "int": 7, "float": 1.5})
        );
        let b: Optional = from_str(r#"{"text": "", "int": null}"#).unwrap();
        assert_eq!((b.text.as_deref(), b.int, b.float), (Some(""), None, None));
        assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"text":""}"#);
    }

    #[test]
    fn counts_are_read_strictly() {
        use serde_json::json;
        for (v, want) in [
            (json!(7), Some(7)),
            (json!("7"), Some(7)),
            (json!(" 7 "), Some(7)),
            (json!(7.0), Some(7)),
            (json!("7.0"), Some(7)),
            (json!(0), Some(0)),
            (json!(i64::MAX), Some(i64::MAX)),
            (json!(-1), None),
            (json!("-1"), None),
            (json!(1.5), None),
            (json!(1e20), None),
            (json!("1e20"), None),
            (json!(u64::MAX), None),
            (json!("99999999999999999999"), None),
            (json!(null), None),
            (json!(""), None),
            (json!("many"), None),
            (json!(true), None),
            (json!([]), None),
            (json!({}), None),
        ] {
            assert_eq!(value_to_count(&v), want, "{v}");
        }
    }
}
