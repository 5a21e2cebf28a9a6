use serde_json::json;

use super::{WireMessage, build};
use crate::sandbox::users::UserMessage;

fn action(v: serde_json::Value) -> UserMessage {
    serde_json::from_value(v).expect("a valid user action")
}

#[test]
fn reply_button_and_list_taps_are_interactive_like_metas() {
    let tap = action(
        json!({"from": "1", "type": "button_reply", "context": "wamid.B", "id": "btn_0", "title": "Call me back"}),
    );
    assert_eq!(
        build("button_reply", &tap, "1").unwrap(),
        WireMessage {
            kind: "interactive",
            payload: json!({"interactive": {"type": "button_reply", "button_reply": {"id": "btn_0", "title": "Call me back"}}}),
            context: Some("wamid.B".into()),
        }
    );
    let pick = action(
        json!({"from": "1", "type": "list_reply", "context": "wamid.L", "id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"}),
    );
    let w = build("list_reply", &pick, "1").unwrap();
    assert_eq!(w.kind, "interactive");
    assert_eq!(
        w.payload,
        json!({"interactive": {"type": "list_reply", "list_reply": {"id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"}}})
    );
}

#[test]
fn a_template_quick_reply_is_a_button_with_payload_and_text() {
    let tap = action(
        json!({"from": "1", "type": "button", "context": "wamid.T", "id": "Unsubscribe", "title": "Unsubscribe"}),
    );
    let w = build("button", &tap, "1").unwrap();
    assert_eq!(w.kind, "button");
    assert_eq!(
        w.payload,
        json!({"button": {"payload": "Unsubscribe", "text": "Unsubscribe"}})
    );
    assert_eq!(w.context.as_deref(), Some("wamid.T"));
}

#[test]
fn a_reaction_names_its_message_and_has_no_context() {
    let r = action(json!({"from": "1", "type": "reaction", "context": "wamid.R", "text": "❤️"}));
    let w = build("reaction", &r, "1").unwrap();
    assert_eq!(w.kind, "reaction");
    assert_eq!(
        w.payload,
        json!({"reaction": {"message_id": "wamid.R", "emoji": "❤️"}})
    );
    assert_eq!(w.context, None);
}

#[test]
fn referral_only_with_text_and_unknown_actions_are_refused() {
    let ad = action(json!({"from": "1", "text": "Is this available?", "referral": true}));
    let w = build("text", &ad, "1").unwrap();
    assert_eq!(w.payload["referral"]["source_type"], "ad");
    assert_eq!(w.payload["text"]["body"], "Is this available?");
    let bad = action(json!({"from": "1", "type": "image", "referral": true}));
    let err = build("image", &bad, "1").unwrap_err();
    assert!(err.contains("comes with a text message"), "{err}");
    let err = build("poll", &action(json!({"from": "1"})), "1").unwrap_err();
    assert_eq!(err, "type 'poll' is not one the sandbox can simulate");
}

#[test]
fn contacts_share_a_card_with_a_phone() {
    let c = action(
        json!({"from": "1", "type": "contacts", "title": "Lucía Gómez", "id": "+1 (983) 555-2319"}),
    );
    let w = build("contacts", &c, "1").unwrap();
    assert_eq!(w.kind, "contacts");
    assert_eq!(
        w.payload["contacts"][0]["phones"][0]["wa_id"],
        "19835552319"
    );
    assert_eq!(
        w.payload["contacts"][0]["name"]["formatted_name"],
        "Lucía Gómez"
    );
}
