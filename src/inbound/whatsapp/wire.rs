//! Meta's webhook JSON, field for field (Cloud API reference §2.4–2.7).
//!
//! Only the envelope is parsed strictly; each message and status is parsed on its own from
//! its `Value` so one odd entry cannot lose the rest of a batch. Timestamps arrive as strings
//! in some places and numbers in others, so [`Stamp`] takes both.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub changes: Vec<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Change {
    pub field: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub phone_number_id: String,
}

#[derive(Debug, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub profile: Option<Profile>,
}

#[derive(Debug, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub name: Option<String>,
}

/// A timestamp as a string of unix seconds or a bare number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stamp {
    Text(String),
    Number(i64),
}

impl Stamp {
    /// In milliseconds; `None` when it is not a number or too large to be one in
    /// milliseconds (a hostile value must not overflow).
    pub fn millis(&self) -> Option<i64> {
        match self {
            Stamp::Text(s) => s.trim().parse::<i64>().ok()?.checked_mul(1000),
            Stamp::Number(n) => n.checked_mul(1000),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub id: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub from_user_id: Option<String>,
    pub timestamp: Stamp,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub context: Option<MessageContext>,
}

#[derive(Debug, Deserialize)]
pub struct MessageContext {
    #[serde(default)]
    pub id: Option<String>,
}

/// `interactive.button_reply` / `interactive.list_reply`: the id and title the business gave
/// the button or row.
#[derive(Debug, Deserialize)]
pub struct InteractiveReply {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `button` of a tap on a template quick-reply button.
#[derive(Debug, Deserialize)]
pub struct QuickReply {
    pub payload: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Status {
    pub id: String,
    pub status: StatusValue,
    pub timestamp: Stamp,
    #[serde(default)]
    pub recipient_id: Option<String>,
    #[serde(default)]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorObject>,
}

/// Meta's status vocabulary. `deleted` is legacy; it is parsed so it is not flagged.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusValue {
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
    Deleted,
}

#[derive(Debug, Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::Stamp;

    #[test]
    fn a_stamp_is_read_in_seconds_and_an_overflowing_one_is_none() {
        assert_eq!(
            Stamp::Text(" 1700000000 ".into()).millis(),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            Stamp::Number(1_700_000_000).millis(),
            Some(1_700_000_000_000)
        );
        assert_eq!(Stamp::Number(i64::MAX).millis(), None);
        assert_eq!(Stamp::Text(i64::MAX.to_string()).millis(), None);
        assert_eq!(Stamp::Text("soon".into()).millis(), None);
    }
}
