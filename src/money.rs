//! Money: integer kopecks and the decimal texts and numbers vendors print.
//!
//! One home for the conversions the connectors and the configuration share;
//! each function keeps the exact rounding and leniency of its callers.

use serde_json::Value;

/// Largest magnitude (in kopecks) sent as a JSON number with cents: up to
/// 15 significant digits every decimal survives the trip through an `f64`
/// (`DBL_DIG`), so the printed number is exactly the amount.
pub const MAX_EXACT_KOPECKS: i64 = 999_999_999_999_999;

/// The rubles JSON number for `kop`: an integer when whole (`100`), else
/// the shortest decimal (`123.45`, `0.5`). `None` for amounts with cents
/// beyond [`MAX_EXACT_KOPECKS`].
///
/// `kop as f64 / 100.0` is the double nearest to the exact decimal (both
/// operands are exact and IEEE division rounds correctly), and serde_json
/// prints the shortest text that reads back to it, which within 15
/// significant digits is that decimal.
pub fn to_rubles(kop: i64) -> Option<serde_json::Number> {
    if kop % 100 == 0 {
        return Some(serde_json::Number::from(kop / 100));
    }
    if kop.unsigned_abs() > MAX_EXACT_KOPECKS as u64 {
        return None;
    }
    serde_json::Number::from_f64(kop as f64 / 100.0)
}

/// Kopecks from a decimal text with 0–2 decimals (`"123"`, `"-0.5"`,
/// `"1 234,50"`, `"100.00"`); more non-zero decimals or anything else → `None`.
pub fn parse_decimal(text: &str) -> Option<i64> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}')
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (cents, rest) = frac.split_at(frac.len().min(2));
    if rest.chars().any(|c| c != '0') {
        return None;
    }
    let rubles: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let cents: i64 = match cents.len() {
        0 => 0,
        1 => cents.parse::<i64>().ok()? * 10,
        _ => cents.parse().ok()?,
    };
    let kop = rubles.checked_mul(100)?.checked_add(cents)?;
    Some(if negative { -kop } else { kop })
}

/// Kopecks from a JSON number or string of rubles.
pub fn from_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => parse_decimal(&n.to_string()),
        Value::String(s) => parse_decimal(s),
        _ => None,
    }
}

/// Converts a decimal amount to kopecks, rounding half away from zero on the
/// decimal digits the value prints as (so `0.29` is 29, not 28).
pub fn money_to_kop(value: f64) -> Option<i64> {
    if !value.is_finite() || value.abs() > 9.0e15 {
        return None;
    }
    let text = value.abs().to_string();
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let units: i64 = int_part.parse().ok()?;
    let mut digits = frac_part
        .chars()
        .map_while(|c| c.to_digit(10).map(i64::from));
    let tenths = digits.next().unwrap_or(0);
    let hundredths = digits.next().unwrap_or(0);
    let round_up = digits.next().unwrap_or(0) >= 5;
    let kop = units
        .checked_mul(100)?
        .checked_add(tenths * 10 + hundredths + i64::from(round_up))?;
    Some(if value < 0.0 { -kop } else { kop })
}

/// Formats kopecks as the decimal amount the API expects (`12345` → `123.45`).
pub fn kop_to_money(kop: i64) -> f64 {
    kop as f64 / 100.0
}

/// Kopecks nearest to a float amount of rubles (`(f * 100).round()`), as EGON
/// amounts are read.
pub fn kop_from_f64_nearest(value: f64) -> i64 {
    (value * 100.0).round() as i64
}
