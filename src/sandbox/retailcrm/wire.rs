//! RetailCRM wire conventions the sandbox reads on its own (RetailCRM API v5
//! documentation): money as a decimal number of rubles.

/// A decimal ruble amount (`123.456`) in kopecks, the third decimal rounding
/// half up; None for non-finite or out-of-range values.
pub(super) fn money_to_kop(value: f64) -> Option<i64> {
    if !value.is_finite() || value.abs() > 9.0e15 {
        return None;
    }
    let text = value.abs().to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let rubles: i64 = whole.parse().ok()?;
    let mut decimals = fraction
        .chars()
        .map_while(|c| c.to_digit(10).map(i64::from));
    let first = decimals.next().unwrap_or(0);
    let second = decimals.next().unwrap_or(0);
    let carry = i64::from(decimals.next().unwrap_or(0) >= 5);
    let kop = rubles
        .checked_mul(100)?
        .checked_add(first * 10 + second + carry)?;
    Some(if value < 0.0 { -kop } else { kop })
}
