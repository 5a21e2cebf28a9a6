//! Which published events start which flows, and who the run is about.
//!
//! An event trigger (`on = "message.received"` …) starts a run per matching event; its
//! filters narrow it: `number` (the business number: display number, phone number id or the
//! number without `+`), and for `message.received` `keyword` (the text is that word, case and
//! surrounding spaces aside), `regex`, `reply_id` (the button or list row tapped) and
//! `first_message` (the message started its conversation). The run's `trigger` is the event's
//! `data`; its `contact` the customer the event is about.

use serde_json::{Value, json};

use super::definition::Trigger;

/// Whether `event_type` with `data` starts a run of a flow with `trigger`.
pub fn matches(trigger: &Trigger, event_type: &str, data: &Value) -> bool {
    if trigger.on != event_type {
        return false;
    }
    if let Some(number) = &trigger.number
        && !same_number(number, data)
    {
        return false;
    }
    let text = data.pointer("/message/text").and_then(Value::as_str);
    if let Some(word) = &trigger.keyword
        && !text.is_some_and(|t| t.trim().eq_ignore_ascii_case(word.trim()))
    {
        return false;
    }
    if let Some(pattern) = &trigger.regex {
        // The check compiled it; a pattern that does not compile matches nothing.
        let Ok(re) = regex::Regex::new(pattern) else {
            return false;
        };
        if !text.is_some_and(|t| re.is_match(t)) {
            return false;
        }
    }
    if let Some(id) = &trigger.reply_id
        && data.pointer("/message/reply_id").and_then(Value::as_str) != Some(id.as_str())
    {
        return false;
    }
    if trigger.first_message == Some(true) && data["first"] != Value::Bool(true) {
        return false;
    }
    true
}

/// The business number of an event: its `sender`, or a conversation's.
fn same_number(number: &str, data: &Value) -> bool {
    let sender = data
        .get("sender")
        .or_else(|| data.pointer("/conversation/sender"))
        .cloned()
        .unwrap_or_else(|| json!({"phone_number_id": data["sender_phone_number_id"], "phone": data["sender_phone"]}));
    let wanted = number.trim_start_matches('+');
    ["phone_number_id", "phone"].iter().any(|k| {
        sender[*k]
            .as_str()
            .is_some_and(|v| v.trim_start_matches('+') == wanted)
    })
}

/// The customer an event is about: `{"phone": "+…", "name": …}` (phone null when none).
pub fn contact(data: &Value) -> Value {
    let phone = [
        "/call/caller",
        "/customer/phone",
        "/conversation/customer/phone",
        "/customer_phone",
        "/phone",
        "/contact/phone",
    ]
    .iter()
    .find_map(|p| data.pointer(p).and_then(Value::as_str).map(str::to_string))
    .or_else(|| {
        // consent.changed and call.permission_changed name the contact by its digits.
        data["contact"]
            .as_str()
            .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit()))
            .map(|c| format!("+{c}"))
    });
    let name = [
        "/customer/name",
        "/conversation/customer/name",
        "/customer_name",
        "/name",
        "/contact/name",
    ]
    .iter()
    .find_map(|p| data.pointer(p).and_then(Value::as_str).map(str::to_string));
    json!({"phone": phone, "name": name})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(toml_text: &str) -> Trigger {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn filters_narrow_message_received() {
        let data = json!({"message": {"text": " Stop ", "reply_id": "yes"}, "first": true,
            "customer": {"phone": "+919876543210", "name": "Asha"},
            "sender": {"phone_number_id": "100000000000001", "phone": "+15550100001"}});
        let t = |s: &str| matches(&trigger(s), "message.received", &data);
        assert!(t(r#"on = "message.received""#));
        assert!(!matches(
            &trigger(r#"on = "message.received""#),
            "call.missed",
            &data
        ));
        assert!(t("on = \"message.received\"\nkeyword = \"stop\""));
        assert!(!t("on = \"message.received\"\nkeyword = \"start\""));
        assert!(t("on = \"message.received\"\nregex = \"(?i)^\\\\s*st\""));
        assert!(!t("on = \"message.received\"\nregex = \"^go\""));
        assert!(t("on = \"message.received\"\nreply_id = \"yes\""));
        assert!(!t("on = \"message.received\"\nreply_id = \"no\""));
        assert!(t("on = \"message.received\"\nfirst_message = true"));
        assert!(t("on = \"message.received\"\nnumber = \"+15550100001\""));
        assert!(t("on = \"message.received\"\nnumber = \"100000000000001\""));
        assert!(!t("on = \"message.received\"\nnumber = \"+15550100002\""));
        let later = json!({"message": {"text": "hi"}, "first": false});
        assert!(!matches(
            &trigger("on = \"message.received\"\nfirst_message = true"),
            "message.received",
            &later
        ));
    }

    #[test]
    fn the_contact_comes_from_each_event_shape() {
        let call = json!({"call": {"caller": "+919876543210"}});
        assert_eq!(contact(&call)["phone"], "+919876543210");
        let consent = json!({"contact": "919876543210", "action": "opt_out"});
        assert_eq!(contact(&consent)["phone"], "+919876543210");
        let started =
            json!({"conversation": {"customer": {"phone": "+4915112345678", "name": "Jan"}}});
        assert_eq!(
            contact(&started),
            json!({"phone": "+4915112345678", "name": "Jan"})
        );
        let ended = json!({"customer_phone": "+4915112345678", "customer_name": null});
        assert_eq!(contact(&ended)["phone"], "+4915112345678");
        assert_eq!(contact(&json!({}))["phone"], Value::Null);
    }
}
