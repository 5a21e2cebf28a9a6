//! The platform's rules, enforced before Meta enforces them: every refusal is a 4xx with a
//! machine code and a sentence saying what to change, and nothing reaches the Cloud API.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn templates_are_synced_and_listed_with_variables_and_a_preview() {
    let app = spawn_app().await;
    let v = app.templates_synced().await;
    let t = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "missed_call_followup")
        .unwrap()
        .clone();
    assert_eq!(t["variables"], json!(["1", "2", "3"]));
    assert_eq!(t["status"], "APPROVED");
    assert!(
        t["preview"]
            .as_str()
            .unwrap()
            .starts_with("Hi <1>, thanks for calling <2>"),
        "{t}"
    );
}

#[tokio::test]
async fn each_refusal_has_a_code_and_a_fix_and_nothing_is_sent() {
    let app = spawn_app().await;
    app.templates_synced().await;
    let to = "+919800300001";
    let buttons: Vec<Value> = (0..4).map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": format!("B{i}")}})).collect();
    app.user_writes(to, "hi").await; // open the window so free-form checks reach the rule book
    let probe = json!({"to": to, "message": {"type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": buttons.clone()}}}});
    eventually(|| async {
        (app.send_message(probe.clone()).await.1["error"]["code"] != "outside_window").then_some(())
    })
    .await;
    let cases = [
        (
            json!({"to": to, "template": {"name": "no_such_template", "language": "en_US"}}),
            "template_invalid",
            "does not exist",
        ),
        (
            json!({"to": to, "template": {"name": "missed_call_followup", "language": "en_US", "parameters": ["Asha", "Bakery"]}}),
            "template_invalid",
            "expected number of params (3)",
        ),
        (
            json!({"to": to, "template": {"name": "missed_call_followup", "language": "pt_BR", "parameters": ["a", "b", "c"]}}),
            "template_invalid",
            "pt_BR",
        ),
        (
            json!({"to": to, "template": {"name": "weekly_offer", "language": "en_US", "parameters": ["a", "b"]}}),
            "template_invalid",
            "parameter_name",
        ),
        (
            json!({"to": to, "text": "x".repeat(4097)}),
            "text_length",
            "4096",
        ),
        (
            json!({"to": to, "message": {"type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": buttons}}}}),
            "invalid_message",
            "Max allowed buttons: 3",
        ),
        (
            json!({"to": "98003 00001", "text": "hi"}),
            "invalid_phone_number",
            "E.164",
        ),
        (
            json!({"to": "+919800300099", "text": "hi"}),
            "outside_window",
            "fallback_template",
        ),
    ];
    for (body, code, needle) in cases {
        let (status, v) = app.send_message(body.clone()).await;
        assert!((400..500).contains(&status), "{body}: {status} {v}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    assert!(
        app.sandbox_sent().await.is_empty(),
        "no refused message reached the Cloud API"
    );
}

#[tokio::test]
async fn named_templates_rich_messages_and_the_fallback_template_go_through() {
    let app = spawn_app().await;
    app.templates_synced().await;
    let (s, v) = app.send_message(json!({"to": "+919800300010", "template": {"name": "weekly_offer", "language": "en_US", "parameters": {"first_name": "Asha", "offer": "2 for 1"}}})).await;
    assert_eq!(s, 202, "{v}");
    let (s, v) = app.send_message(json!({"to": "+919800300011", "text": "hello", "fallback_template": {"name": "hello_world", "language": "en_US"}})).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["type"], "template");
    let id = v["id"].as_str().unwrap().to_string();
    let m = app.message_in_state(&id, "delivered").await;
    assert!(m["reason"].as_str().unwrap().contains("window"), "{m}");
    app.user_writes("+919800300012", "hi").await;
    let list = json!({"type": "interactive", "interactive": {"type": "list", "body": {"text": "Pick a time"}, "action": {"button": "Times",
        "sections": [{"title": "Today", "rows": [{"id": "t1", "title": "10:00"}, {"id": "t2", "title": "11:00"}]}]}}});
    // The window opens once the user's message is processed, moments after the webhook.
    let v = eventually(|| async {
        let (s, v) = app
            .send_message(json!({"to": "+919800300012", "message": list}))
            .await;
        (s == 202).then_some(v)
    })
    .await;
    app.message_in_state(v["id"].as_str().unwrap(), "delivered")
        .await;
}

#[tokio::test]
async fn api_keys_guard_the_api_once_one_exists_and_can_be_revoked() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/messages", app.base);
    assert_eq!(
        app.http.get(&url).send().await.unwrap().status(),
        200,
        "no key yet: open on loopback"
    );
    let store = app.running.as_ref().unwrap().store.clone();
    let (key, secret) = ringback::api_keys::create(store.as_ref(), "crm")
        .await
        .unwrap();
    assert!(secret.starts_with("rbk_"));
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth("rbk_wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(store.revoke_api_key(&key.id, 0).await.unwrap());
    let r = app
        .http
        .get(&url)
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("ringback keys list"));
}

#[tokio::test]
async fn a_click_to_whatsapp_referral_gets_the_free_entry_point_window() {
    let app = spawn_app().await;
    let now = (ringback::time::now_ms() / 1000).to_string();
    let referral = wa_envelope(json!({
        "contacts": [{"profile": {"name": "Ad Clicker"}, "wa_id": "919800700001"}],
        "messages": [{"from": "919800700001", "id": "wamid.ctwa1", "timestamp": now, "type": "text", "text": {"body": "I saw your ad"},
            "referral": {"source_url": "https://fb.me/ad", "source_id": "ad-1", "source_type": "ad", "headline": "Fresh bread",
                "body": "Order now", "media_type": "image", "ctwa_clid": "clid-1"}}]
    }));
    assert_eq!(app.whatsapp(&referral).await.status(), 200);
    let first = eventually(|| async {
        let (s, v) = app
            .send_message(json!({"to": "+919800700001", "text": "Thanks for your interest!"}))
            .await;
        (s == 202).then_some(v)
    })
    .await;
    let m = app.message(first["id"].as_str().unwrap()).await;
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .contains("opens the 72-hour free entry point window"),
        "{m}"
    );
    let (_, second) = app
        .send_message(json!({"to": "+919800700001", "text": "Here is our menu."}))
        .await;
    let m = app.message(second["id"].as_str().unwrap()).await;
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .contains("inside the free entry point window"),
        "{m}"
    );
}
