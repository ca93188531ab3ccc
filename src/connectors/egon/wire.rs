//! serde helpers local to EGON's formats.

use super::*;

/// serde: an integer count that may be missing, null, a string or a float; missing is 0.
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(0),
        Some(v) => lenient::value_to_count(&v)
            .ok_or_else(|| de::Error::custom(format!("expected a count, got {v}"))),
    }
}

/// serde: optional counters; null and PHP's empty `[]` are None.
pub(super) fn opt_counts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CountTypes>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.is_empty() => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(de::Error::custom),
    }
}

/// serde: a `Y-m-d H:i:s` date-time (also ISO `T`-separated); empty, null or
/// `0000-00-00 00:00:00` is None.
pub(super) fn opt_datetime<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<NaiveDateTime>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    let Some(text) = v.as_ref().and_then(lenient::value_to_id) else {
        return Ok(None);
    };
    if text.is_empty() || text.starts_with("0000-00-00") {
        return Ok(None);
    }
    parse_datetime(&text)
        .map(Some)
        .ok_or_else(|| de::Error::custom(format!("expected Y-m-d H:i:s, got {text:?}")))
}

/// Parses EGON's `Y-m-d H:i:s` (or `Y-m-dTH:i:s`) date-time.
pub fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    NaiveDateTime::parse_from_str(t, DATETIME_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
        .ok()
}

/// serde: a decimal money amount (number or string) as an integer count of
/// minor units (kopecks / cents); null or `""` is None.
pub(super) fn opt_money<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref()
        .and_then(lenient::value_to_f64)
        .map(crate::money::kop_from_f64_nearest))
}

/// serde (send side): minor units as the documented decimal.
pub(super) fn money_out<S: Serializer>(kop: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match kop {
        Some(k) => s.serialize_f64(crate::money::kop_to_money(*k)),
        None => s.serialize_none(),
    }
}

/// serde (send side): an id documented as Integer is sent as a number when it
/// is one, and as the string otherwise (SKUs are not always numeric).
pub(super) fn id_out<S: Serializer>(id: &str, s: S) -> Result<S::Ok, S::Error> {
    match id.parse::<i64>() {
        Ok(n) if n.to_string() == id => s.serialize_i64(n),
        _ => s.serialize_str(id),
    }
}

/// serde (send side): a flag documented as Integer 0/1.
pub(super) fn flag_out<S: Serializer>(flag: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(u8::from(*flag))
}

/// serde (send side): an optional flag documented as Integer 0/1.
pub(super) fn opt_flag_out<S: Serializer>(flag: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
    match flag {
        Some(f) => s.serialize_u8(u8::from(*f)),
        None => s.serialize_none(),
    }
}
