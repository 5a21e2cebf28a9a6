use serde_json::json;

use super::*;

fn source() -> WhatsAppSource {
    WhatsAppSource::new(
        "s".to_string().into(),
        "tok".to_string().into(),
        ["106540352242922".to_string()],
    )
}

fn envelope(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":value}]}]})).unwrap()
}

fn meta() -> serde_json::Value {
    json!({"display_phone_number":"15550783881","phone_number_id":"106540352242922"})
}

#[test]
fn handshake_requires_mode_and_token() {
    let s = source();
    assert_eq!(
        s.handshake(Some("subscribe"), Some("tok"), Some("123")),
        Some("123".into())
    );
    assert_eq!(
        s.handshake(Some("subscribe"), Some("bad"), Some("123")),
        None
    );
    assert_eq!(
        s.handshake(Some("unsubscribe"), Some("tok"), Some("123")),
        None
    );
}

#[test]
fn text_message_with_contact_and_string_timestamp() {
    let body = envelope(json!({"messaging_product":"whatsapp","metadata":meta(),
        "contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],
        "messages":[{"from":"16505551234","id":"wamid.A","timestamp":"1749416383","type":"text","text":{"body":"hello"}}]}));
    let events = source().parse(&body).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].dedup_key, "wa:msg:wamid.A");
    let InboundEvent::Message(m) = &events[0].event else {
        panic!("{events:?}")
    };
    assert_eq!(m.text.as_deref(), Some("hello"));
    assert_eq!(m.profile_name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(m.timestamp, 1_749_416_383_000);
    assert!(!m.unknown_type);
}

#[test]
fn every_documented_type_parses_and_unknown_types_are_kept() {
    let kinds = [
        (
            "image",
            json!({"image":{"caption":"look","mime_type":"image/jpeg","sha256":"x","id":"1"}}),
        ),
        (
            "audio",
            json!({"audio":{"mime_type":"audio/ogg","sha256":"x","id":"1","voice":true}}),
        ),
        (
            "location",
            json!({"location":{"latitude":1.0,"longitude":2.0}}),
        ),
        (
            "interactive",
            json!({"interactive":{"type":"button_reply","button_reply":{"id":"b1","title":"Call me back"}},"context":{"from":"1","id":"wamid.B"}}),
        ),
        ("button", json!({"button":{"payload":"p","text":"Yes"}})),
        (
            "reaction",
            json!({"reaction":{"message_id":"wamid.B","emoji":"👍"}}),
        ),
        ("request_welcome", json!({})),
        ("poll_v9", json!({"poll_v9":{"q":"?"}})),
    ];
    for (i, (kind, extra)) in kinds.iter().enumerate() {
        let mut msg = json!({"from":"16505551234","id":format!("wamid.{i}"),"timestamp":1749416383,"type":kind});
        msg.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let body =
            envelope(json!({"messaging_product":"whatsapp","metadata":meta(),"messages":[msg]}));
        let events = source().parse(&body).unwrap();
        let InboundEvent::Message(m) = &events[0].event else {
            panic!("{kind}: {events:?}")
        };
        assert_eq!(m.message_type, *kind);
        assert_eq!(m.unknown_type, *kind == "poll_v9", "{kind}");
    }
}

#[test]
fn statuses_with_errors_and_dedup_keys() {
    let body = envelope(json!({"messaging_product":"whatsapp","metadata":meta(),
        "statuses":[{"id":"wamid.S","status":"failed","timestamp":"1750030073","recipient_id":"16505551234",
          "biz_opaque_callback_data":"msg_1",
          "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message","error_data":{"details":"More than 24 hours"}}]},
          {"id":"wamid.S","status":"sent","timestamp":"1750030070","recipient_id":"16505551234"}]}));
    let events = source().parse(&body).unwrap();
    assert_eq!(events[0].dedup_key, "wa:status:wamid.S:failed");
    assert_eq!(events[1].dedup_key, "wa:status:wamid.S:sent");
    let InboundEvent::Status(s) = &events[0].event else {
        panic!()
    };
    assert_eq!(s.errors[0].code, 131047);
    assert_eq!(s.biz_opaque_callback_data.as_deref(), Some("msg_1"));
}

#[test]
fn one_bad_entry_does_not_lose_the_others() {
    let body = envelope(json!({"messaging_product":"whatsapp","metadata":meta(),
        "messages":[{"from":"1","id":"wamid.ok","timestamp":"1","type":"text","text":{"body":"a"}},
                    {"from":"1","timestamp":"1","type":"text"}],
        "statuses":[{"id":"wamid.x","status":"exploded","timestamp":"1"}]}));
    let events = source().parse(&body).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, ["message", "flagged", "flagged"]);
}

#[test]
fn unknown_phone_number_id_is_flagged_not_dropped() {
    let body = envelope(
        json!({"messaging_product":"whatsapp","metadata":{"phone_number_id":"999"},
        "messages":[{"from":"1","id":"wamid.ok","timestamp":"1","type":"text","text":{"body":"a"}}]}),
    );
    let events = source().parse(&body).unwrap();
    let InboundEvent::Flagged { reason, .. } = &events[0].event else {
        panic!()
    };
    assert!(reason.contains("999"));
}

#[test]
fn management_fields_are_kept() {
    let body = serde_json::to_vec(&json!({"object":"whatsapp_business_account","entry":[{"id":"1","time":1739321024,
        "changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":1,"message_template_name":"x","message_template_language":"en_US","reason":null}}]}]})).unwrap();
    let events = source().parse(&body).unwrap();
    assert!(
        matches!(&events[0].event, InboundEvent::Other { field, .. } if field == "message_template_status_update")
    );
}

#[test]
fn malformed_bodies_are_rejected() {
    assert!(matches!(
        source().parse(b"{not json"),
        Err(Rejected::Malformed(_))
    ));
    assert!(matches!(
        source().parse(br#"{"object":"page","entry":[]}"#),
        Err(Rejected::Malformed(_))
    ));
}

/// Meta's own webhook examples ("Interactive Button Reply Message", "Interactive List Reply
/// Message", "Button Message" in the Cloud API OpenAPI description).
#[test]
fn taps_in_metas_shape_are_read_as_replies() {
    let cases = [
        (
            json!({"context":{"from":"15550783881","id":"wamid.B"},"from":"16505551234","id":"wamid.1","timestamp":"1750025136","type":"interactive",
                "interactive":{"type":"button_reply","button_reply":{"id":"cancel-button","title":"Cancel"}}}),
            crate::inbound::ReplyTap {
                kind: "button_reply".into(),
                id: "cancel-button".into(),
                title: "Cancel".into(),
                description: None,
            },
        ),
        (
            json!({"context":{"from":"15550783881","id":"wamid.B"},"from":"16505551234","id":"wamid.2","timestamp":"1749854575","type":"interactive",
                "interactive":{"type":"list_reply","list_reply":{"id":"priority_express","title":"Priority Mail Express","description":"Next Day to 2 Days"}}}),
            crate::inbound::ReplyTap {
                kind: "list_reply".into(),
                id: "priority_express".into(),
                title: "Priority Mail Express".into(),
                description: Some("Next Day to 2 Days".into()),
            },
        ),
        (
            json!({"context":{"from":"15550783881","id":"wamid.B"},"from":"16505551234","id":"wamid.3","timestamp":"1750091045","type":"button",
                "button":{"payload":"Unsubscribe","text":"Unsubscribe"}}),
            crate::inbound::ReplyTap {
                kind: "button".into(),
                id: "Unsubscribe".into(),
                title: "Unsubscribe".into(),
                description: None,
            },
        ),
    ];
    for (msg, want) in cases {
        let body =
            envelope(json!({"messaging_product":"whatsapp","metadata":meta(),"messages":[msg]}));
        let events = source().parse(&body).unwrap();
        let InboundEvent::Message(m) = &events[0].event else {
            panic!("{events:?}")
        };
        assert!(!m.unknown_type, "{m:?}");
        assert_eq!(m.context_id.as_deref(), Some("wamid.B"));
        assert_eq!(m.text.as_deref(), Some(want.title.as_str()));
        assert_eq!(m.reply.as_ref(), Some(&want));
    }
}

/// The shape the sandbox used to post (`"type":"button_reply"`) is not Meta's: it stays an
/// unknown type and no tap is read from it.
#[test]
fn a_tap_typed_button_reply_is_not_metas_shape() {
    let msg = json!({"from":"16505551234","id":"wamid.X","timestamp":"1750025136","type":"button_reply",
        "interactive":{"type":"button_reply","button_reply":{"id":"b","title":"B"}}});
    let body = envelope(json!({"messaging_product":"whatsapp","metadata":meta(),"messages":[msg]}));
    let events = source().parse(&body).unwrap();
    let InboundEvent::Message(m) = &events[0].event else {
        panic!("{events:?}")
    };
    assert!(m.unknown_type);
    assert_eq!(m.reply, None);
}
