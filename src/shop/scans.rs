//! Marking-code scan rules: the verdict for a scan of a user given what the
//! shop knows of the code ([`judge`]), and the decision that marks a free code
//! used ([`decide`]). Used by the IMSHOP scan hook and by `reconcile scans`.

use super::{MarkingCode, Shop, ShopError};
use crate::connectors::imshop::ScanStatus;

/// How a code lookup went.
enum Lookup {
    /// Known to the shop.
    Known(MarkingCode),
    /// Unknown under every candidate; the first candidate is the code.
    Unknown(String),
}

async fn lookup(shop: &Shop, candidates: &[String]) -> Result<Lookup, ShopError> {
    for c in candidates {
        if let Some(found) = shop.marking_code(c).await? {
            return Ok(Lookup::Known(found));
        }
    }
    Ok(Lookup::Unknown(
        candidates.first().cloned().unwrap_or_default(),
    ))
}

/// A scan verdict with its texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Status.
    pub status: ScanStatus,
    /// Popup title.
    pub alert_title: Option<&'static str>,
    /// Popup text.
    pub alert_message: Option<&'static str>,
    /// Text in the history.
    pub status_message: &'static str,
}

/// Approved: the code is registered to the user.
pub const APPROVED: Verdict = Verdict {
    status: ScanStatus::Approved,
    alert_title: None,
    alert_message: None,
    status_message: "Код маркировки зарегистрирован",
};
/// Denied: unknown code.
pub const DENIED_UNKNOWN: Verdict = Verdict {
    status: ScanStatus::Denied,
    alert_title: Some("Ошибка"),
    alert_message: Some("Код маркировки не найден"),
    status_message: "Регистрация по данному коду невозможна",
};
/// Denied: used by someone else.
pub const DENIED_USED: Verdict = Verdict {
    status: ScanStatus::Denied,
    alert_title: Some("Ошибка"),
    alert_message: Some("Этот код маркировки уже зарегистрирован другим пользователем"),
    status_message: "Код уже использован",
};
/// Processing: checked later.
pub const PROCESSING: Verdict = Verdict {
    status: ScanStatus::Processing,
    alert_title: Some("Код принят"),
    alert_message: Some("Мы проверим код и обновим статус сканирования"),
    status_message: "Код на проверке",
};

/// Decides a scan of `user` against the shop: looks the `candidates` up in
/// order (the IMSHOP scan hook decodes a barcode into them), marks a free code
/// used by `user`, and
/// returns the code the scan is about with its verdict (never `processing`).
///
/// Used by the listener and by `reconcile scans` when it re-checks scans left
/// `processing`. An error means the shop could not be asked.
pub async fn decide(
    shop: &Shop,
    candidates: &[String],
    user: &str,
) -> Result<(String, Verdict), ShopError> {
    let mut code = match lookup(shop, candidates).await? {
        Lookup::Unknown(code) => return Ok((code, DENIED_UNKNOWN)),
        Lookup::Known(code) => code,
    };
    if code.used_by.is_none() && !shop.use_marking_code(&code.code, user).await? {
        // Someone took it between the lookup and the update: read the winner.
        code = shop.marking_code(&code.code).await?.unwrap_or(code);
    }
    Ok((code.code.clone(), judge(Some(&code), user)))
}

/// The verdict for a scan of `user` given what the shop knows of the code
/// (`None`: unknown): approved when free or already used by `user`, denied
/// when unknown or used by someone else. Reads only; nothing is marked used.
pub fn judge(code: Option<&MarkingCode>, user: &str) -> Verdict {
    match code.map(|c| c.used_by.as_deref()) {
        None => DENIED_UNKNOWN,
        Some(None | Some("")) => APPROVED,
        Some(Some(u)) if u == user => APPROVED,
        Some(Some(_)) => DENIED_USED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_follows_the_code_owner() {
        let code = |used_by: Option<&str>| MarkingCode {
            code: "C".into(),
            sku: "S".into(),
            used_by: used_by.map(str::to_string),
            used_at: None,
        };
        assert_eq!(judge(None, "u1"), DENIED_UNKNOWN);
        assert_eq!(judge(Some(&code(None)), "u1"), APPROVED);
        assert_eq!(judge(Some(&code(Some(""))), "u1"), APPROVED);
        assert_eq!(judge(Some(&code(Some("u1"))), "u1"), APPROVED);
        assert_eq!(judge(Some(&code(Some("u2"))), "u1"), DENIED_USED);
    }
}
