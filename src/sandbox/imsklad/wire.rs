//! IMSKLAD wire conventions the sandbox answers with, written from the IMSKLAD
//! API documentation (the `update_order` warning, rubles as JSON numbers).

/// The warning IMSKLAD answers when `update_order` could not change the goods
/// of an order that is already being assembled (IMSKLAD API documentation,
/// §order/update_order).
pub const WARNING_GOODS_NOT_SAVED: &str = "The order in the assembly process(goods not saved)";

/// Largest magnitude (in kopecks) sent as a JSON number with cents: up to 15
/// significant digits every decimal survives the trip through an `f64`.
const MAX_EXACT_KOPECKS: i64 = 999_999_999_999_999;

/// The rubles JSON number for `kop`: an integer when whole (`100`), else the
/// shortest decimal (`123.45`); `None` for amounts with cents beyond
/// [`MAX_EXACT_KOPECKS`].
pub fn to_rubles(kop: i64) -> Option<serde_json::Number> {
    if kop % 100 == 0 {
        return Some(serde_json::Number::from(kop / 100));
    }
    if kop.unsigned_abs() > MAX_EXACT_KOPECKS as u64 {
        return None;
    }
    serde_json::Number::from_f64(kop as f64 / 100.0)
}
