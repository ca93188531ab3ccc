//! Filtered `GET /store/inventories` reads: the current figures of a few
//! offers, for the stock job's delta mode.
//!
//! Two filters select offers: the configured key's list
//! (`filter[offerExternalId][]` / `filter[offerXmlId][]`; UNVERIFIED: the
//! official PHP client types them as lists, the Go client as one string) and
//! `filter[ids][]` (CRM offer ids). A batch never holds more values than the
//! page size the CRM accepts, and its URL stays under [`MAX_URL_BYTES`]. A CRM
//! that refuses a filter (HTTP 400) or ignores it (answers an offer that was
//! not asked for) gives [`FilteredRead::NotAccepted`], so the caller can try
//! the other filter or upload without reading.

use std::collections::HashSet;
use std::ops::ControlFlow;

use super::{with_page, InventoryOffer, OfferKey, RetailCrmClient, RetailCrmError};

/// The longest request URL a filtered read builds (8 KB: what common web
/// servers and proxies accept in a request line).
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// Which filter selects the offers of a filtered read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InventoryFilter {
    /// `filter[offerExternalId][]` or `filter[offerXmlId][]` (the configured key).
    OfferKey,
    /// `filter[ids][]`, the CRM offer ids.
    Ids,
}

impl InventoryFilter {
    /// The name in run summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            InventoryFilter::OfferKey => "offer_key",
            InventoryFilter::Ids => "ids",
        }
    }

    /// The query parameter for `key`.
    pub fn param(self, key: OfferKey) -> &'static str {
        match self {
            InventoryFilter::OfferKey => key.inventory_filter(),
            InventoryFilter::Ids => "filter[ids][]",
        }
    }
}

/// What a filtered read found.
#[derive(Debug)]
pub enum FilteredRead {
    /// The offers the CRM holds among those asked for (an offer it does not
    /// hold is simply absent).
    Offers(Vec<InventoryOffer>),
    /// The CRM refused or ignored the filter (why).
    NotAccepted(String),
}

/// Length of `text` once `application/x-www-form-urlencoded` (as the query
/// string is sent): alphanumerics and `*-._` stay, a space is one `+`, every
/// other byte is `%XX`.
pub fn encoded_len(text: &str) -> usize {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_' | b' ') {
                1
            } else {
                3
            }
        })
        .sum()
}

impl RetailCrmClient {
    fn filtered_base(&self) -> Vec<(String, String)> {
        let mut base = vec![("filter[details]".to_string(), "1".to_string())];
        if let Some(site) = &self.inner.site {
            base.push(("filter[sites][]".into(), site.clone()));
        }
        base
    }

    /// Splits `values` into the batches of a filtered read: at most the page
    /// size the CRM accepts now, and a URL under [`MAX_URL_BYTES`].
    pub fn filter_batches<'a>(
        &self,
        filter: InventoryFilter,
        values: &'a [String],
    ) -> Vec<&'a [String]> {
        let limit = self.inventory_page_limit() as usize;
        let param = encoded_len(filter.param(self.inner.offer_key));
        let mut fixed = self.inner.api.len() + "/store/inventories?".len();
        for (k, v) in with_page(&self.filtered_base(), 99_999, limit as u32) {
            fixed += encoded_len(&k) + 1 + encoded_len(&v) + 1;
        }
        let mut out = Vec::new();
        let (mut start, mut len) = (0, fixed);
        for (i, v) in values.iter().enumerate() {
            let add = param + 1 + encoded_len(v) + 1;
            if i > start && (i - start >= limit || len + add > MAX_URL_BYTES) {
                out.push(&values[start..i]);
                start = i;
                len = fixed;
            }
            len += add;
        }
        if start < values.len() {
            out.push(&values[start..]);
        }
        out
    }

    /// The current stock of the offers named by `values` (one batch of
    /// [`Self::filter_batches`]), with the per-store breakdown.
    pub async fn inventories_filtered(
        &self,
        filter: InventoryFilter,
        values: &[String],
    ) -> Result<FilteredRead, RetailCrmError> {
        if values.is_empty() {
            return Ok(FilteredRead::Offers(Vec::new()));
        }
        let key = self.inner.offer_key;
        let param = filter.param(key);
        let mut base = self.filtered_base();
        base.extend(values.iter().map(|v| (param.to_string(), v.clone())));
        let asked: HashSet<&str> = values.iter().map(String::as_str).collect();
        let (first, limit) = match self.inventory_page(&base, 1).await {
            Ok(answer) => answer,
            Err(RetailCrmError::Api {
                status: 400,
                message,
                ..
            }) => {
                return Ok(FilteredRead::NotAccepted(format!(
                    "the CRM refused `{param}`: {message}"
                )))
            }
            Err(e) => return Err(e),
        };
        let mut all = Vec::new();
        let walk = self.walk_inventory(&base, first, limit, |offers| {
            for offer in offers {
                let id = offer.id.to_string();
                let named = match filter {
                    InventoryFilter::Ids => asked.contains(id.as_str()),
                    InventoryFilter::OfferKey => offer.sku(key).is_some_and(|s| asked.contains(s)),
                };
                if !named {
                    return ControlFlow::Break(FilteredRead::NotAccepted(format!(
                        "the CRM ignored `{param}` (it answered offer {id}, which was not asked for)"
                    )));
                }
                all.push(offer);
            }
            ControlFlow::Continue(())
        });
        if let Some(refused) = walk.await? {
            return Ok(refused);
        }
        Ok(FilteredRead::Offers(all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_lengths() {
        assert_eq!(encoded_len("SKU-0001"), 8);
        assert_eq!(encoded_len("filter[ids][]"), 6 + 3 * 4 + 3);
        assert_eq!(encoded_len("а"), 6);
    }
}
