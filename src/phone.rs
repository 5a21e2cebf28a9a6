//! Phone numbers: untrusted caller ids in, E.164 out.
//!
//! Everything that reaches the Cloud API or the store as a person's number is a [`PhoneE164`].
//! Parsing uses the `phonenumber` crate (a port of Google's libphonenumber) behind a defensive
//! wrapper: a cheap pre-filter, an explicit default region, `catch_unwind` because the crate has
//! a history of panics on odd input, and a classification that says *why* a caller id is not
//! usable (withheld, short code, invalid) so the reason can be recorded.

use std::fmt;
use std::str::FromStr;

use phonenumber::{Type, country};
use serde::{Deserialize, Serialize};

/// A valid phone number in E.164 form, always with its leading `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneE164(String);

/// A region such as `US` or `IN`, used to read national-format numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(country::Id);

/// Why a caller id cannot be answered on WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// The network or the caller hid the number (anonymous, restricted, empty, sentinels).
    #[error("caller id withheld ({0})")]
    Withheld(String),
    /// Too short to be a subscriber number: an extension, a service or a short code.
    #[error("'{0}' is a short code or extension, not a subscriber number")]
    ShortCode(String),
    /// Parsed, but no such number exists in the numbering plan.
    #[error("'{0}' is not a valid phone number")]
    Invalid(String),
    /// A fixed-line, toll-free or premium number: it cannot have WhatsApp.
    #[error("'{number}' is a {kind} number, which cannot receive WhatsApp messages")]
    NotMobile { number: String, kind: &'static str },
}

impl Region {
    /// The region's two-letter code as given in config.
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

impl FromStr for Region {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        country::Id::from_str(&s.trim().to_ascii_uppercase())
            .map(Region)
            .map_err(|_| format!("'{s}' is not an ISO 3166 region code such as US, IN or GB"))
    }
}

/// Twilio and carriers put keypad spellings of ANONYMOUS, RESTRICTED, UNKNOWN, BLOCKED and
/// UNAVAILABLE in `From` for hidden callers; they parse as (invalid) foreign numbers.
const WITHHELD_SENTINELS: &[&str] = &[
    "+266696687",
    "+7378742833",
    "+8656696",
    "+2562533",
    "+86282452253",
];
const WITHHELD_WORDS: &[&str] = &[
    "anonymous",
    "restricted",
    "unknown",
    "unavailable",
    "private",
    "blocked",
    "withheld",
];

impl PhoneE164 {
    /// Reads a number a person typed or an API sent: it must be E.164 already (a `+` and
    /// country code), though spaces, dashes, dots and brackets are tolerated.
    pub fn parse_international(input: &str) -> Result<Self, String> {
        let cleaned = strip_visual(input);
        if !cleaned.starts_with('+') {
            return Err(format!(
                "'{input}' is not in international format: write it as E.164 with a '+' and the \
                 country code, for example +14155552671"
            ));
        }
        match classify(&cleaned, None) {
            Ok(p) => Ok(p),
            Err(e) => Err(format!(
                "{e}: expected an E.164 number such as +14155552671"
            )),
        }
    }

    /// Reads a caller id from a telephony source: SIP/tel URIs, national formats (read in
    /// `region`), hidden-caller sentinels. Mobile and "fixed line or mobile" (all of NANP) are
    /// accepted; other kinds are refused with the reason.
    pub fn from_caller_id(input: &str, region: Region) -> Result<Self, Unusable> {
        let raw = input.trim();
        let lowered = raw.to_ascii_lowercase();
        let user = uri_user(&lowered);
        if user.is_empty() || WITHHELD_WORDS.iter().any(|w| user.contains(w)) {
            return Err(Unusable::Withheld(if raw.is_empty() {
                "empty".into()
            } else {
                raw.into()
            }));
        }
        let cleaned = strip_visual(user);
        if WITHHELD_SENTINELS.contains(&cleaned.as_str()) {
            return Err(Unusable::Withheld(raw.into()));
        }
        let digits = cleaned.trim_start_matches('+').len();
        if digits < 7 {
            return Err(Unusable::ShortCode(raw.into()));
        }
        classify(&cleaned, Some(region))
    }

    /// The number with its `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits only, as WhatsApp writes a `wa_id`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// A number from the operator's own configuration (a business line): only the E.164 shape
    /// is checked, because business numbers include ranges (such as 555-01xx test numbers)
    /// that the numbering-plan metadata does not list.
    pub fn parse_configured(input: &str) -> Result<Self, String> {
        let cleaned = strip_visual(input);
        match cleaned.strip_prefix('+') {
            Some(d)
                if (8..=15).contains(&d.len())
                    && d.bytes().all(|b| b.is_ascii_digit())
                    && !d.starts_with('0') =>
            {
                Ok(PhoneE164(cleaned))
            }
            _ => Err(format!(
                "'{input}' is not an E.164 number: write '+', the country code and the number, e.g. +14155552671"
            )),
        }
    }

    /// A number WhatsApp sent us as a `wa_id` (digits, no `+`). Meta's ids are trusted to be
    /// international; they are not re-validated against the numbering plan.
    pub fn from_wa_id(wa_id: &str) -> Option<Self> {
        let d = wa_id.trim().trim_start_matches('+');
        (!d.is_empty() && d.len() <= 15 && d.bytes().all(|b| b.is_ascii_digit()))
            .then(|| PhoneE164(format!("+{d}")))
    }
}

/// Parses and classifies; the crate call is guarded because untrusted input has made it panic.
fn classify(cleaned: &str, region: Option<Region>) -> Result<PhoneE164, Unusable> {
    if cleaned.len() > 24 || !cleaned.bytes().all(|b| b.is_ascii_digit() || b == b'+') {
        return Err(Unusable::Invalid(cleaned.into()));
    }
    let owned = cleaned.to_string();
    let parsed = std::panic::catch_unwind(move || {
        let number = phonenumber::parse(region.map(|r| r.0), &owned).ok()?;
        let kind = number.number_type(&phonenumber::metadata::DATABASE);
        // `is_valid` is exactly "the number's type is known" (same metadata, same regexes):
        // asking for both ran the type's regexes twice, a third of a caller id's parse.
        let valid = kind != Type::Unknown;
        // E.164 is "+", the country code and the national number with its leading zeros;
        // the crate's formatter would also pick a display pattern by regex, unused here.
        let e164 = format!("+{}{}", number.country().code(), number.national());
        Some((valid, kind, e164))
    });
    let Ok(Some((valid, kind, e164))) = parsed else {
        return Err(Unusable::Invalid(cleaned.into()));
    };
    if !valid {
        return Err(Unusable::Invalid(cleaned.into()));
    }
    match kind {
        Type::Mobile | Type::FixedLineOrMobile | Type::Voip | Type::PersonalNumber => {
            Ok(PhoneE164(e164))
        }
        Type::ShortCode | Type::Emergency => Err(Unusable::ShortCode(cleaned.into())),
        other => Err(Unusable::NotMobile {
            number: e164,
            kind: type_name(other),
        }),
    }
}

fn type_name(t: Type) -> &'static str {
    match t {
        Type::FixedLine => "fixed-line",
        Type::TollFree => "toll-free",
        Type::PremiumRate => "premium-rate",
        Type::SharedCost => "shared-cost",
        Type::Pager => "pager",
        Type::Uan => "company (UAN)",
        Type::Voicemail => "voicemail",
        _ => "non-mobile",
    }
}

/// `sip:+1415…@host;user=phone` → `+1415…`; `tel:+1415…` → `+1415…`; anything else unchanged.
fn uri_user(s: &str) -> &str {
    let s = s.strip_prefix('<').unwrap_or(s);
    let s = s
        .strip_prefix("sips:")
        .or_else(|| s.strip_prefix("sip:"))
        .or_else(|| s.strip_prefix("tel:"))
        .unwrap_or(s);
    let end = s.find(['@', ';', '>']).unwrap_or(s.len());
    s[..end].trim()
}

/// Removes the separators people and carriers put in numbers; keeps a leading `+`.
fn strip_visual(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.trim().chars().enumerate() {
        match c {
            '+' if i == 0 => out.push('+'),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneE164 {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PhoneE164::parse_international(&s)
    }
}

impl From<PhoneE164> for String {
    fn from(p: PhoneE164) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests;
