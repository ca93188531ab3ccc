//! IMSKLAD API documentation: texts the WMS answers with.

/// The warning IMSKLAD answers when `update_order` could not change the goods
/// of an order that is already being assembled (IMSKLAD API documentation,
/// §order/update_order).
pub const WARNING_GOODS_NOT_SAVED: &str = "The order in the assembly process(goods not saved)";
