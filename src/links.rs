//! Click-to-chat links: a `https://wa.me/<number>?text=…` link, the `whatsapp://send` deep link
//! and a QR code that open a chat with a business number, the text already typed.
//!
//! A *tracked* link also gets a short address served by Ringback (`/l/{code}`, which counts the
//! click and redirects to wa.me), and its prefilled text carries a reference, `(ref CODE)`. When
//! a customer's message carries that reference, the processor attributes the conversation to
//! the link and, for someone the ledger knows nothing about yet, records the consent source
//! ("click-to-chat link CODE"). An untracked link is just the wa.me link and its QR code.
//!
//! The rules live here, free of HTTP and SQL: the API, the CLI and the console all create
//! links with [`create`]. [`qr`] draws the codes.

use std::sync::LazyLock;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cloud_api::calling::GraphError;
use crate::config::{Sender, Settings};
use crate::consent::{Action, Category, Record};
use crate::store::{Store, StoreError};
use crate::time::Millis;

pub mod qr;

/// The letters a code is made of: no 0/O, 1/I/L, so a code read aloud or off paper is typed
/// right.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_LEN: usize = 6;

/// The longest prefilled text Ringback accepts (the URL stays far below browsers' limits).
pub const MAX_TEXT_CHARS: usize = 1000;
/// Meta's limit for the prefilled text of its own QR codes and short links.
pub const META_MAX_TEXT_CHARS: usize = 140;

/// A stored link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub code: String,
    /// The business number it opens a chat with (its phone_number_id)…
    pub sender_id: String,
    /// …and that number's digits, as wa.me wants them.
    pub number: String,
    /// The text as given, without the reference.
    pub text: String,
    /// Where the link is published (`website`, `flyer`, `email-signature` …).
    pub source: String,
    pub tracked: bool,
    /// Meta's own QR code / short link for the same text, when one was made.
    pub meta_code: Option<String>,
    pub meta_deep_link: Option<String>,
    pub clicks: i64,
    /// Customers whose message carried the link's reference (each counted once).
    pub conversations: i64,
    pub created_at: Millis,
    pub last_clicked_at: Option<Millis>,
}

impl Link {
    /// The text the customer's WhatsApp shows, ready to send: with the reference when tracked.
    pub fn prefilled(&self) -> String {
        prefilled(&self.text, &self.code, self.tracked)
    }

    /// `https://wa.me/<digits>?text=…`.
    pub fn wa_me(&self) -> String {
        let text = self.prefilled();
        if text.is_empty() {
            return format!("https://wa.me/{}", self.number);
        }
        format!("https://wa.me/{}?text={}", self.number, encode(&text))
    }

    /// `whatsapp://send?phone=<digits>&text=…`: opens the app directly, without a browser.
    pub fn deep_link(&self) -> String {
        format!(
            "whatsapp://send?phone={}&text={}",
            self.number,
            encode(&self.prefilled())
        )
    }

    /// Ringback's short address, when the link is tracked and `server.public_base_url` is set.
    pub fn tracked_url(&self, public_base_url: Option<&str>) -> Option<String> {
        match (self.tracked, public_base_url) {
            (true, Some(base)) => Some(format!("{}/l/{}", base.trim_end_matches('/'), self.code)),
            _ => None,
        }
    }

    /// What the QR code encodes: the short address when there is one (so scans are counted),
    /// otherwise wa.me.
    pub fn qr_target(&self, public_base_url: Option<&str>) -> String {
        self.tracked_url(public_base_url)
            .unwrap_or_else(|| self.wa_me())
    }

    /// The evidence and source a first message through this link leaves in the ledger.
    pub fn consent_source(&self) -> String {
        format!("click-to-chat link {} ({})", self.code, self.source)
    }
}

/// A link as the API, the CLI (`--json`) and the console's scripts show it.
pub fn view(link: &Link, public_base_url: Option<&str>) -> Value {
    json!({
        "code": link.code,
        "sender_id": link.sender_id,
        "number": format!("+{}", link.number),
        "text": link.text,
        "prefilled_text": link.prefilled(),
        "source": link.source,
        "tracked": link.tracked,
        "wa_me_url": link.wa_me(),
        "deep_link": link.deep_link(),
        "tracked_url": link.tracked_url(public_base_url),
        "qr_target": link.qr_target(public_base_url),
        "qr_svg": format!("/api/v1/links/{}/qr.svg", link.code),
        "qr_png": format!("/api/v1/links/{}/qr.png", link.code),
        "meta": link.meta_code.as_ref().map(|c| json!({"code": c, "deep_link_url": link.meta_deep_link})),
        "clicks": link.clicks,
        "conversations": link.conversations,
        "created_at": crate::time::display(link.created_at),
        "last_clicked_at": link.last_clicked_at.map(crate::time::display),
    })
}

/// Percent-encodes everything but letters and digits (wa.me reads `%20`, not `+`).
fn encode(text: &str) -> String {
    const SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');
    utf8_percent_encode(text, SET).to_string()
}

/// The text with its reference appended when tracked.
pub fn prefilled(text: &str, code: &str, tracked: bool) -> String {
    match (tracked, text.trim().is_empty()) {
        (false, _) => text.trim().to_string(),
        (true, true) => format!("(ref {code})"),
        (true, false) => format!("{} (ref {code})", text.trim()),
    }
}

/// A new random code.
pub fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether `s` could be a code at all: anything else is refused before the store is asked, so
/// `/l/{code}` cannot be made to look up, or redirect to, anything of the caller's choosing.
pub fn is_code(s: &str) -> bool {
    s.len() == CODE_LEN && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// A code as a person may type it (in lower case), in the form it is stored; `None` when it
/// cannot be a code.
pub fn normalize_code(s: &str) -> Option<String> {
    let upper = s.to_ascii_uppercase();
    is_code(&upper).then_some(upper)
}

/// The link a person typed the code of (in any case); `None` when there is none.
pub async fn find(store: &dyn Store, typed: &str) -> Result<Option<Link>, StoreError> {
    match normalize_code(typed) {
        Some(code) => store.link(&code).await,
        None => Ok(None),
    }
}

static REFERENCE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)\(ref ([23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6})\)")
        .expect("the reference pattern is valid")
});

/// The link code a customer's message carries, if it kept the prefilled reference.
pub fn reference_in(text: &str) -> Option<String> {
    REFERENCE
        .captures(text)
        .map(|c| c[1].to_ascii_uppercase())
        .filter(|c| is_code(c))
}

/// The ledger record a first message through a link leaves — only for someone the ledger has
/// no decision about yet: writing to the business is consent to its answers (utility), not to
/// marketing, and never overrides an earlier STOP.
pub fn consent_record(
    link: &Link,
    state: &crate::consent::State,
    subject: &str,
    wa_id: Option<&str>,
    user_id: Option<&str>,
    wamid: &str,
    at: Millis,
) -> Option<Record> {
    if !state.is_empty() {
        return None;
    }
    Some(Record {
        sender_id: link.sender_id.clone(),
        subject: subject.to_string(),
        wa_id: wa_id.map(str::to_string),
        user_id: user_id.map(str::to_string),
        category: Category::Utility,
        action: Action::OptIn,
        source: "click_to_chat".into(),
        evidence: format!(
            "{}: message {wamid} carried its reference",
            link.consent_source()
        ),
        at,
    })
}

/// What a person asks for.
#[derive(Debug, Clone, Default)]
pub struct NewLink {
    pub text: String,
    pub source: String,
    /// The business number (phone_number_id); the first `[[senders]]` when absent.
    pub sender_id: Option<String>,
    pub tracked: bool,
    /// Also create Meta's own QR code / short link (`/{phone-number-id}/message_qrdls`).
    pub meta: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{0}")]
    Invalid(String),
    #[error("the Cloud API refused Meta's QR code: {0}")]
    Meta(GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a request against the rules, naming what to change.
pub fn check(new: &NewLink) -> Result<(), LinkError> {
    let invalid = |m: String| Err(LinkError::Invalid(m));
    let chars = new.text.trim().chars().count();
    if chars > MAX_TEXT_CHARS {
        return invalid(format!(
            "the text has {chars} characters; a link's text may have at most {MAX_TEXT_CHARS}"
        ));
    }
    let reference = if new.tracked {
        " (ref XXXXXX)".len()
    } else {
        0
    };
    if new.meta && chars + reference > META_MAX_TEXT_CHARS {
        return invalid(format!(
            "Meta's QR codes take at most {META_MAX_TEXT_CHARS} characters of text (the reference included); this text has {chars}"
        ));
    }
    let source = new.source.trim();
    if source.is_empty()
        || source.len() > 64
        || !source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return invalid(format!(
            "source '{source}' must be 1-64 letters, digits, '-', '_' or '.' (for example website or flyer-2026)"
        ));
    }
    Ok(())
}

/// The QR code must hold what it encodes: wa.me percent-encodes the text, so a long text in a
/// non-Latin script can outgrow a QR code before the 1,000-character limit.
pub fn fits_a_qr_code(link: &Link, public_base_url: Option<&str>) -> Result<(), LinkError> {
    qr::svg(&link.qr_target(public_base_url), 64)
        .map(|_| ())
        .map_err(|e| {
            LinkError::Invalid(format!(
                "{e}: shorten the text (or set server.public_base_url, so the QR code holds the short address)"
            ))
        })
}

/// Creates and stores a link (and Meta's QR code for it when asked): the one path for the API,
/// the CLI and the console.
pub async fn create(
    store: &dyn Store,
    settings: &Settings,
    cloud_api: &crate::cloud_api::Client,
    new: NewLink,
    now: Millis,
) -> Result<Link, LinkError> {
    check(&new)?;
    let sender: &Sender = settings
        .sender(new.sender_id.as_deref())
        .map_err(LinkError::Invalid)?;
    let mut link = Link {
        code: new_code(),
        sender_id: sender.phone_number_id.clone(),
        number: sender.display_number.digits().to_string(),
        text: new.text.trim().to_string(),
        source: new.source.trim().to_string(),
        tracked: new.tracked,
        meta_code: None,
        meta_deep_link: None,
        clicks: 0,
        conversations: 0,
        created_at: now,
        last_clicked_at: None,
    };
    fits_a_qr_code(&link, settings.public_base_url.as_deref())?;
    // A code is random; on the rare clash, draw again.
    for _ in 0..5 {
        if store.link(&link.code).await?.is_none() {
            break;
        }
        link.code = new_code();
    }
    if new.meta {
        let qr = cloud_api
            .create_qr(
                &sender.phone_number_id,
                &sender.access_token,
                &link.prefilled(),
                crate::cloud_api::qr::ImageFormat::Svg,
            )
            .await
            .map_err(LinkError::Meta)?;
        link.meta_code = Some(qr.code);
        link.meta_deep_link = Some(qr.deep_link_url);
    }
    let stored = store.create_link(&link).await;
    if !matches!(stored, Ok(true))
        && let Some(code) = &link.meta_code
    {
        // Meta allows 2,000 codes a number: do not leave one behind for a link not kept.
        if let Err(e) = cloud_api
            .delete_qr(&sender.phone_number_id, &sender.access_token, code)
            .await
        {
            tracing::warn!(error.message = %e, code, "Meta's QR code of a link that was not stored could not be deleted.");
        }
    }
    if !stored? {
        return Err(LinkError::Invalid(format!(
            "the code {} is taken; try again",
            link.code
        )));
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(tracked: bool) -> Link {
        Link {
            code: "K7Q2MX".into(),
            sender_id: "100".into(),
            number: "447700900123".into(),
            text: "Hi, I missed your call & want a table?".into(),
            source: "website".into(),
            tracked,
            meta_code: None,
            meta_deep_link: None,
            clicks: 0,
            conversations: 0,
            created_at: 0,
            last_clicked_at: None,
        }
    }

    #[test]
    fn wa_me_and_deep_link_encode_the_text_with_its_reference() {
        let l = link(true);
        assert_eq!(
            l.wa_me(),
            "https://wa.me/447700900123?text=Hi%2C%20I%20missed%20your%20call%20%26%20want%20a%20table%3F%20%28ref%20K7Q2MX%29"
        );
        assert!(
            l.deep_link()
                .starts_with("whatsapp://send?phone=447700900123&text=Hi%2C%20I")
        );
        assert_eq!(
            link(false).prefilled(),
            "Hi, I missed your call & want a table?"
        );
        let mut empty = link(false);
        empty.text = String::new();
        assert_eq!(empty.wa_me(), "https://wa.me/447700900123");
    }

    #[test]
    fn the_tracked_address_needs_a_public_base_url() {
        let l = link(true);
        assert_eq!(
            l.tracked_url(Some("https://rb.example/")).as_deref(),
            Some("https://rb.example/l/K7Q2MX")
        );
        assert_eq!(l.tracked_url(None), None);
        assert_eq!(l.qr_target(None), l.wa_me());
        assert_eq!(link(false).tracked_url(Some("https://rb.example")), None);
    }

    #[test]
    fn a_reference_is_found_in_an_edited_message_and_nothing_else_is() {
        assert_eq!(
            reference_in("Hi there (REF k7q2mx) thanks").as_deref(),
            Some("K7Q2MX")
        );
        assert_eq!(reference_in("(ref K7Q2M)"), None);
        assert_eq!(
            reference_in("(ref K7Q2M0)"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(reference_in("no reference"), None);
        for _ in 0..100 {
            assert!(is_code(&new_code()));
        }
        assert!(!is_code("../../"));
        assert!(!is_code("K7Q2MXX"));
        assert_eq!(normalize_code("k7q2mx").as_deref(), Some("K7Q2MX"));
        assert_eq!(normalize_code("k7q2m0"), None);
    }

    #[test]
    fn consent_is_recorded_only_for_someone_the_ledger_does_not_know() {
        let l = link(true);
        let r = consent_record(
            &l,
            &Vec::new(),
            "447700900999",
            Some("447700900999"),
            None,
            "wamid.1",
            5,
        )
        .expect("a first contact is recorded");
        assert_eq!((r.category, r.action), (Category::Utility, Action::OptIn));
        assert_eq!(r.source, "click_to_chat");
        assert!(r.evidence.contains("click-to-chat link K7Q2MX (website)"));
        let stopped = vec![(Category::All, Action::OptOut, 1)];
        assert_eq!(
            consent_record(&l, &stopped, "447700900999", None, None, "wamid.1", 5),
            None,
            "an earlier STOP stands"
        );
    }

    #[test]
    fn a_text_whose_address_outgrows_a_qr_code_is_refused_unless_the_short_address_is_encoded() {
        let mut l = link(false);
        l.text = "न".repeat(900);
        let e = fits_a_qr_code(&l, None).unwrap_err().to_string();
        assert!(e.contains("shorten the text"), "{e}");
        l.tracked = true;
        assert!(fits_a_qr_code(&l, Some("https://rb.example")).is_ok());
        assert!(fits_a_qr_code(&link(false), None).is_ok());
    }

    #[test]
    fn bad_requests_say_what_to_change() {
        let ok = NewLink {
            text: "Hi".into(),
            source: "website".into(),
            ..Default::default()
        };
        assert!(check(&ok).is_ok());
        let long = NewLink {
            text: "x".repeat(130),
            meta: true,
            tracked: true,
            ..ok.clone()
        };
        assert!(check(&long).unwrap_err().to_string().contains("140"));
        let untracked = NewLink {
            text: "x".repeat(140),
            meta: true,
            tracked: false,
            ..ok.clone()
        };
        assert!(check(&untracked).is_ok(), "no reference added: 140 fit");
        let bad_source = NewLink {
            source: "<script>".into(),
            ..ok
        };
        assert!(
            check(&bad_source)
                .unwrap_err()
                .to_string()
                .contains("source")
        );
    }
}
