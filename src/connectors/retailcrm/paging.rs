//! RetailCRM paging rules and answer interpretation.

use super::*;

pub(super) fn with_page(base: &[(String, String)], page: u32, limit: u32) -> Vec<(String, String)> {
    let mut q = base.to_vec();
    q.push(("limit".into(), limit.to_string()));
    q.push(("page".into(), page.to_string()));
    q
}

/// True when the CRM refused the page size: a 400 whose `errors` (or message) name `limit`.
pub fn refuses_page_size(e: &RetailCrmError) -> bool {
    match e {
        RetailCrmError::Api {
            status: 400,
            message,
            errors,
            ..
        } => {
            errors.iter().any(|f| {
                f.field.as_deref() == Some("limit")
                    || (f.field.is_none() && f.message.contains("limit"))
            }) || message.contains("limit")
        }
        _ => false,
    }
}

/// True when `page` (of `limit` items a page) is the last one: the page came
/// back empty, it is the last `totalPageCount` announces, or the pages so far
/// hold `totalCount` items. A server that repeats pages or announces more
/// pages than its `totalCount` fills is never followed past `totalCount`.
pub(super) fn is_last_page(p: &Pagination, page: u32, items: usize, limit: u32) -> bool {
    items == 0
        || p.total_page_count
            .is_none_or(|total| i64::from(page) >= total)
        || p.total_count
            .is_some_and(|count| i64::from(page).saturating_mul(i64::from(limit)) >= count)
}

/// The pages a list of `limit` items a page can have: `totalPageCount`, but
/// never more than `totalCount` needs.
pub(super) fn pages_announced(p: &Pagination, limit: u32) -> u32 {
    let by_pages = p
        .total_page_count
        .map_or(1, |t| t.clamp(1, i64::from(u32::MAX)));
    let by_count = p.total_count.map_or(i64::MAX, |c| {
        let limit = i64::from(limit.max(1));
        (c.max(1) + limit - 1) / limit
    });
    by_pages.min(by_count).clamp(1, i64::from(u32::MAX)) as u32
}

/// A plain success decoded straight into `T`, without building the
/// answer's JSON tree first: a 2xx/3xx status, a JSON object whose
/// `success` is absent or true, read by `T` as it stands. Anything else (an
/// error or a refusal, an HTML page, JSON with trailing commas, a field `T`
/// cannot read) is `None`, and [`interpret`] reads the answer as before and
/// says what is wrong: this only skips the tree where the tree changes
/// nothing.
pub fn decode_success<T: serde::de::DeserializeOwned>(status: u16, body: &str) -> Option<T> {
    /// Only `success`; every other field is skipped without being built.
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        success: Option<Value>,
    }
    if !(200..400).contains(&status) {
        return None;
    }
    let trimmed = body.trim_start_matches('\u{feff}').trim_start();
    if !trimmed.starts_with('{') {
        return None;
    }
    let probe: Probe = serde_json::from_str(trimmed).ok()?;
    let refused = probe.success.is_some_and(|v| match v {
        Value::Bool(b) => !b,
        other => lenient::value_to_i64(&other).is_none_or(|n| n == 0),
    });
    if refused {
        return None;
    }
    serde_json::from_str(trimmed).ok()
}

/// Turns a status and body into the answer's JSON or a typed error.
pub fn interpret(endpoint: &str, status: u16, body: &str) -> Result<Value, RetailCrmError> {
    let endpoint_s = || endpoint.to_string();
    if status == 429 || status == 503 {
        return Err(RetailCrmError::RateLimited {
            endpoint: endpoint_s(),
            status,
        });
    }
    if status >= 500 {
        return Err(RetailCrmError::Server {
            endpoint: endpoint_s(),
            status,
            snippet: snippet(body),
        });
    }
    let trimmed = body.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('<') {
        return Err(RetailCrmError::NotApi {
            endpoint: endpoint_s(),
            status,
            snippet: snippet(body),
        });
    }
    let value: Value = match lenient::from_str(trimmed) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Err(RetailCrmError::Malformed {
                endpoint: endpoint_s(),
                status,
                snippet: snippet(body),
            })
        }
    };
    let success = value.get("success").map(|v| match v {
        Value::Bool(b) => *b,
        other => lenient::value_to_i64(other).is_some_and(|n| n != 0),
    });
    if status >= 400 || success == Some(false) {
        let message = value
            .get("errorMsg")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Err(RetailCrmError::Api {
            endpoint: endpoint_s(),
            status,
            kind: ApiErrorKind::classify(status, &message),
            errors: field_errors(value.get("errors")),
            message,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        items: Vec<i64>,
    }

    #[test]
    fn only_a_plain_success_skips_the_json_tree() {
        let ok = r#"{"success":true,"items":[1,2],"pagination":{"limit":250}}"#;
        assert_eq!(
            decode_success::<Answer>(200, ok),
            Some(Answer { items: vec![1, 2] })
        );
        // `success` absent, or truthy as PHP writes it.
        for body in [
            r#"{"items":[3]}"#,
            r#"{"success":1,"items":[3]}"#,
            "\u{feff} {\"items\":[3]}",
        ] {
            assert_eq!(
                decode_success::<Answer>(200, body),
                Some(Answer { items: vec![3] }),
                "{body}"
            );
        }
        // Everything else is interpret's to read and explain.
        for (status, body) in [
            (200, r#"{"success":false,"errorMsg":"Nope"}"#),
            (200, r#"{"success":0,"items":[1]}"#),
            (400, r#"{"success":true,"items":[1]}"#),
            (503, r#"{"success":true}"#),
            (200, "<html>maintenance</html>"),
            (200, r#"{"success":true,"items":[1,],}"#),
            (200, r#"{"success":true,"items":"many"}"#),
            (200, "[1, 2]"),
        ] {
            assert_eq!(
                decode_success::<Answer>(status, body),
                None,
                "{status} {body}"
            );
        }
        // interpret still reads what decode_success left: trailing commas included.
        let value = interpret("/x", 200, r#"{"success":true,"items":[1,],}"#).expect("lenient");
        assert_eq!(
            serde_json::from_value::<Answer>(value).ok(),
            Some(Answer { items: vec![1] })
        );
    }
}
