use serde_json::json;

use super::*;
use crate::cloud_api::template::{Template, demo_templates};

fn number() -> SenderRef<'static> {
    SenderRef {
        display_digits: "15550100001",
        waba_id: "w",
    }
}

fn check(req: serde_json::Value) -> Result<Validated, (i64, String)> {
    let mut templates = demo_templates("w");
    let mut media = Template::simple("w", 9, "order_update", "UTILITY", "Order {{1}} shipped");
    media
        .components
        .insert(0, json!({"type": "HEADER", "format": "IMAGE"}));
    media.components.push(json!({"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://x.example/t/{{1}}"}]}));
    templates.push(media);
    validate(&number(), &templates, &req).map_err(|f| (f.code, f.details))
}

/// Asserts `req` is refused with Meta error `code` and details containing `needle`: a bare
/// `is_err()` would also pass when the request is refused for some other reason.
#[track_caller]
fn refused(req: serde_json::Value, code: i64, needle: &str) {
    match check(req) {
        Err((c, details)) => assert!(
            c == code && details.contains(needle),
            "expected ({code}, …{needle}…), got ({c}, {details})"
        ),
        Ok(v) => panic!("expected ({code}, …{needle}…), but it was accepted: {v:?}"),
    }
}

fn msg(kind: &str, payload: serde_json::Value) -> serde_json::Value {
    let mut v = json!({"messaging_product": "whatsapp", "to": "+919876543210", "type": kind});
    v[kind] = payload;
    v
}

#[test]
fn text_limits() {
    assert!(check(msg("text", json!({"body": "hi", "preview_url": true}))).is_ok());
    let e = check(msg("text", json!({"body": "x".repeat(4097)}))).unwrap_err();
    assert_eq!(e.0, 100);
    assert!(e.1.contains("4096"), "{e:?}");
    assert_eq!(check(msg("text", json!({}))).unwrap_err().0, 131008);
    assert_eq!(
        check(json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}))
            .unwrap_err()
            .0,
        131008
    );
    assert_eq!(
        check(json!({"to": "1", "text": {"body": "x"}}))
            .unwrap_err()
            .0,
        100
    );
    assert_eq!(
        check(
            json!({"messaging_product": "whatsapp", "to": "+1 555 0100 001", "text": {"body": "x"}})
        )
        .unwrap_err()
        .0,
        131021
    );
}

#[test]
fn media_needs_exactly_one_source_and_no_caption_on_audio() {
    assert!(
        check(msg(
            "image",
            json!({"link": "https://x.example/a.jpg", "caption": "c"})
        ))
        .is_ok()
    );
    refused(
        msg("image", json!({"id": "1", "link": "https://x"})),
        100,
        "either 'id' or 'link', not both",
    );
    refused(
        msg("image", json!({})),
        131008,
        "image['id'] or image['link']",
    );
    refused(
        msg("audio", json!({"id": "1", "caption": "no"})),
        100,
        "audio['caption'] is not allowed",
    );
    refused(
        msg("document", json!({"id": "1", "caption": "x".repeat(1025)})),
        100,
        "document['caption'] must be at most 1024 characters",
    );
    refused(
        msg("image", json!({"link": "ftp://x"})),
        100,
        "must be an http or https URL",
    );
}

#[test]
fn location_contacts_reaction() {
    assert!(
        check(msg(
            "location",
            json!({"latitude": "37.7", "longitude": -122.4})
        ))
        .is_ok()
    );
    refused(
        msg("location", json!({"latitude": 91, "longitude": 0})),
        131009,
        "Latitude must be within ±90",
    );
    assert!(
        check(msg(
            "contacts",
            json!([{"name": {"formatted_name": "A B"}}])
        ))
        .is_ok()
    );
    refused(msg("contacts", json!([])), 100, "contacts must have 1 to");
    assert!(
        check(msg(
            "reaction",
            json!({"message_id": "wamid.X", "emoji": ""})
        ))
        .is_ok()
    );
    assert_eq!(check(msg("poll", json!({}))).unwrap_err().0, 131051);
}

#[test]
fn interactive_buttons_lists_and_cta() {
    let buttons = |n: usize, title: &str| {
        let b: Vec<_> = (0..n).map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": format!("{title}{i}")}})).collect();
        msg(
            "interactive",
            json!({"type": "button", "body": {"text": "pick"}, "action": {"buttons": b}}),
        )
    };
    assert!(check(buttons(3, "ok")).is_ok());
    assert!(
        check(buttons(4, "ok"))
            .unwrap_err()
            .1
            .contains("Max allowed buttons: 3")
    );
    assert!(
        check(buttons(1, &"x".repeat(20)))
            .unwrap_err()
            .1
            .contains("20")
    );
    let rows: Vec<_> = (0..11)
        .map(|i| json!({"id": format!("r{i}"), "title": "t"}))
        .collect();
    let list = msg(
        "interactive",
        json!({"type": "list", "body": {"text": "b"}, "action": {"button": "Choose", "sections": [{"title": "s", "rows": rows}]}}),
    );
    assert!(check(list).unwrap_err().1.contains("1 to 10 rows"));
    let cta = msg(
        "interactive",
        json!({"type": "cta_url", "body": {"text": "b"}, "action": {"name": "cta_url", "parameters": {"display_text": "Open", "url": "https://x.example"}}}),
    );
    assert!(check(cta).is_ok());
    let perm = msg(
        "interactive",
        json!({"type": "call_permission_request", "body": {"text": "May we call?"}, "action": {"name": "call_permission_request"}}),
    );
    assert!(check(perm).is_ok());
}

#[test]
fn templates_status_count_format_header_and_buttons() {
    let tpl = |name: &str, components: serde_json::Value| {
        msg(
            "template",
            json!({"name": name, "language": {"code": "en_US"}, "components": components}),
        )
    };
    assert!(check(tpl("hello_world", json!([]))).is_ok());
    assert_eq!(check(tpl("nope", json!([]))).unwrap_err().0, 132001);
    let three = json!([{"type": "body", "parameters": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"type": "text", "text": "c"}]}]);
    assert!(check(tpl("missed_call_followup", three)).is_ok());
    let two = json!([{"type": "body", "parameters": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]);
    assert_eq!(
        check(tpl("missed_call_followup", two)).unwrap_err().0,
        132000
    );
    let positional_for_named = json!([{"type": "body", "parameters": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]);
    assert_eq!(
        check(tpl("weekly_offer", positional_for_named))
            .unwrap_err()
            .0,
        132012
    );
    let named = json!([{"type": "body", "parameters": [{"type": "text", "parameter_name": "offer", "text": "a"}, {"type": "text", "parameter_name": "first_name", "text": "b"}]}]);
    assert!(check(tpl("weekly_offer", named)).is_ok());
    let body = json!({"type": "body", "parameters": [{"type": "text", "text": "42"}]});
    let no_header = json!([body]);
    assert!(
        check(tpl("order_update", no_header))
            .unwrap_err()
            .1
            .contains("header")
    );
    let wrong_header =
        json!([{"type": "header", "parameters": [{"type": "video", "video": {"id": "1"}}]}, body]);
    assert_eq!(
        check(tpl("order_update", wrong_header)).unwrap_err().0,
        132012
    );
    let no_button =
        json!([{"type": "header", "parameters": [{"type": "image", "image": {"id": "1"}}]}, body]);
    assert!(
        check(tpl("order_update", no_button))
            .unwrap_err()
            .1
            .contains("button")
    );
    let full = json!([{"type": "header", "parameters": [{"type": "image", "image": {"id": "1"}}]}, body,
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "abc"}]}]);
    assert!(check(tpl("order_update", full)).is_ok());
}

mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Arbitrary JSON, biased towards the keys and shapes a send request has, so the search
    /// reaches deep into the validator instead of stopping at the first missing field.
    fn json_value() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(vec![
            "messaging_product",
            "to",
            "type",
            "text",
            "body",
            "template",
            "name",
            "language",
            "code",
            "components",
            "parameters",
            "interactive",
            "action",
            "buttons",
            "reply",
            "id",
            "title",
            "sections",
            "rows",
            "header",
            "image",
            "link",
            "caption",
            "location",
            "latitude",
            "longitude",
            "contacts",
            "reaction",
            "emoji",
            "x",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "[a-z_+0-9 ]{0,30}".prop_map(Value::from),
            prop::sample::select(vec![
                "whatsapp",
                "text",
                "template",
                "interactive",
                "button",
                "list",
                "image",
                "+919876543210",
                "hello_world",
                "en_US",
                "body",
                "reply"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The validator never panics, and every refusal names a Meta code and says why.
        #[test]
        fn validator_never_panics(v in json_value()) {
            if let Err(f) = validate(&number(), &demo_templates("w"), &v) {
                prop_assert!(f.code > 0);
                prop_assert!(!f.details.is_empty());
            }
        }

        /// Raw bytes never panic the JSON step that precedes validation.
        #[test]
        fn arbitrary_bytes_are_refused_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                let _ = validate(&number(), &demo_templates("w"), &v);
            }
        }
    }
}
