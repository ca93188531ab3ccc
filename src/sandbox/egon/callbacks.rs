//! Callbacks EGON sends to the shop: envelopes and senders.

use super::*;

// ---------------------------------------------------------------------------
// Callbacks: EGON → shop
// ---------------------------------------------------------------------------

/// How EGON delivers a callback to the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `POST`, `application/x-www-form-urlencoded`, JSON in the field `req`.
    FormReq,
    /// `POST`, the JSON as the raw body.
    RawJson,
    /// `GET ?req=<JSON>`.
    QueryReq,
    /// Like [`Transport::FormReq`] with the JSON HTML-entity-escaped (`&quot;`).
    FormReqHtmlEscaped,
    /// `POST`, `multipart/form-data` with the JSON in the part `req` (as PHP's
    /// cURL posts an array; UNVERIFIED which encoding EGON uses).
    MultipartReq,
}

/// The callback envelope: `{"auth":{auth_id, auth_key}, "request":{req_method, req_data}}` (no token).
pub fn callback_envelope(auth_id: &str, auth_key: &str, method: &str, req_data: &Value) -> Value {
    json!({
        "auth": {"auth_id": auth_id, "auth_key": auth_key},
        "request": {"req_method": method, "req_data": req_data},
    })
}

/// Sends one callback to the shop's listener; returns the HTTP status and body.
pub async fn send_callback(
    url: &str,
    auth_id: &str,
    auth_key: &str,
    method: &str,
    req_data: &Value,
    transport: Transport,
) -> Result<(u16, String), reqwest::Error> {
    let json = callback_envelope(auth_id, auth_key, method, req_data).to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let request = match transport {
        Transport::FormReq => client.post(url).form(&[("req", json.as_str())]),
        Transport::FormReqHtmlEscaped => {
            let escaped = html_escape::encode_quoted_attribute(&json).into_owned();
            client.post(url).form(&[("req", escaped.as_str())])
        }
        Transport::RawJson => client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json),
        Transport::QueryReq => client.get(url).query(&[("req", json.as_str())]),
        Transport::MultipartReq => {
            let boundary = "------------------------sverkaSandboxBoundary7MA4YWxk";
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"req\"\r\n\r\n{json}\r\n--{boundary}--\r\n"
            );
            client
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
        }
    };
    let resp = request.send().await?;
    let status = resp.status().as_u16();
    let body = resp.text().await?;
    Ok((status, body))
}
