//! Where business-initiated calling (and every call-permission feature) is not offered:
//! Meta decides by the *business* number's country (reference `cloud-api.md` §7.1; Meta
//! answers 138013). The user's country does not matter.

use crate::phone::PhoneE164;

/// ISO 3166 codes of the countries whose business numbers cannot place calls.
pub const UNAVAILABLE: &[(&str, &str)] = &[
    ("US", "the United States"),
    ("CA", "Canada"),
    ("TR", "Turkey"),
    ("EG", "Egypt"),
    ("VN", "Vietnam"),
    ("NG", "Nigeria"),
];

/// The region of a business number, from the numbering plan (None if it is not in the plan,
/// e.g. a 555-01xx test range: then the country calling code decides).
fn region_of(number: &PhoneE164) -> Option<String> {
    let parsed = phonenumber::parse(None, number.as_str()).ok()?;
    if let Some(id) = parsed.country().id() {
        return Some(id.as_ref().to_string());
    }
    // Not in the plan: +1 is the North American plan (US and Canada both unavailable, so
    // treat it as US), the others by their single-country codes.
    match parsed.country().code() {
        1 => Some("US".into()),
        90 => Some("TR".into()),
        20 => Some("EG".into()),
        84 => Some("VN".into()),
        234 => Some("NG".into()),
        _ => None,
    }
}

/// `Err` with the reason when `business` may not place business-initiated calls.
pub fn business_calls_available(business: &PhoneE164) -> Result<(), String> {
    let Some(region) = region_of(business) else {
        return Ok(());
    };
    match UNAVAILABLE.iter().find(|(code, _)| *code == region) {
        Some((_, name)) => Err(format!(
            "business-initiated calls are not available for business numbers from {name} ({business}); Meta refuses them with 138013. Users can still call this number."
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PhoneE164 {
        PhoneE164::parse_configured(s).unwrap()
    }

    #[test]
    fn the_business_number_decides() {
        for bad in [
            "+14155552671",
            "+16135550123",
            "+15550100001",
            "+905321234567",
            "+201012345678",
            "+84912345678",
            "+2348031234567",
        ] {
            let e = business_calls_available(&n(bad)).unwrap_err();
            assert!(
                e.contains("not available for business numbers from"),
                "{bad}: {e}"
            );
        }
        for ok in [
            "+447700900123",
            "+919876543210",
            "+5511987654321",
            "+4915123456789",
        ] {
            assert!(business_calls_available(&n(ok)).is_ok(), "{ok}");
        }
    }
}
