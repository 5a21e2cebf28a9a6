//! The sandbox against Meta's wire contract: every simulated user action arrives in the shape
//! of Meta's own webhook examples, unknown Graph versions get Graph's answer, what the sandbox
//! keeps is bounded, and Ringback reads a tap the sandbox posts as the reply it is.

use serde_json::{Value, json};

use super::{env, env_with, template, text, wamid};
use crate::support::{Db, PNID, eventually, on_db, spawn_app};

/// The keys of Meta's example message objects (the Cloud API OpenAPI description's webhook
/// examples), minus `id`/`from`/`timestamp`, which every message has.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

#[tokio::test]
async fn taps_picks_quick_replies_and_reactions_arrive_in_metas_shape() {
    let e = env().await;
    let user = "919800009000";
    e.control(
        "/sandbox/users/message",
        json!({"from": user, "text": "hi"}),
    )
    .await;
    let buttons = json!({"messaging_product": "whatsapp", "to": user, "type": "interactive", "interactive": {"type": "button",
        "body": {"text": "Pick"}, "action": {"buttons": [{"type": "reply", "reply": {"id": "cancel-button", "title": "Cancel"}}]}}});
    let b = wamid(&e.send(buttons).await.1);
    let list = json!({"messaging_product": "whatsapp", "to": user, "type": "interactive", "interactive": {"type": "list",
        "body": {"text": "Shipping?"}, "action": {"button": "Choose", "sections": [{"title": "Speed", "rows": [
            {"id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"}]}]}}});
    let l = wamid(&e.send(list).await.1);
    let t = wamid(&e.send(template(user, "hello_world")).await.1);
    let actions = [
        json!({"from": user, "type": "button_reply", "context": b, "id": "cancel-button", "title": "Cancel"}),
        json!({"from": user, "type": "list_reply", "context": l, "id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"}),
        json!({"from": user, "type": "button", "context": t, "id": "Unsubscribe", "title": "Unsubscribe"}),
        json!({"from": user, "type": "reaction", "context": b, "text": "👍"}),
    ];
    let mut ids = Vec::new();
    for a in actions {
        let (s, v) = e.control("/sandbox/users/message", a).await;
        assert_eq!(s, 200, "{v}");
        ids.push(v["wamid"].as_str().unwrap().to_string());
    }
    let got = eventually(|| async {
        let msgs = e.capture.items("messages", "messages");
        let found: Vec<Value> = ids
            .iter()
            .filter_map(|id| msgs.iter().find(|m| m["id"] == id.as_str()).cloned())
            .collect();
        (found.len() == ids.len()).then_some(found)
    })
    .await;
    let common = ["from", "from_user_id", "id", "timestamp", "type"];
    let with = |extra: &[&str]| {
        let mut k: Vec<String> = common.iter().chain(extra).map(|s| s.to_string()).collect();
        k.sort();
        k
    };
    // Meta's "Interactive Button Reply Message".
    let tap = &got[0];
    assert_eq!(tap["type"], "interactive");
    assert_eq!(keys(tap), with(&["context", "interactive"]));
    assert_eq!(
        tap["interactive"],
        json!({"type": "button_reply", "button_reply": {"id": "cancel-button", "title": "Cancel"}})
    );
    assert_eq!(tap["context"]["id"], b.as_str());
    assert_eq!(tap["context"]["from"], "447700900011");
    // Meta's "Interactive List Reply Message".
    let pick = &got[1];
    assert_eq!(pick["type"], "interactive");
    assert_eq!(
        pick["interactive"],
        json!({"type": "list_reply", "list_reply": {"id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"}})
    );
    assert_eq!(pick["context"]["id"], l.as_str());
    // Meta's "Button Message" (a template quick reply).
    let quick = &got[2];
    assert_eq!(keys(quick), with(&["button", "context"]));
    assert_eq!(
        quick["button"],
        json!({"payload": "Unsubscribe", "text": "Unsubscribe"})
    );
    assert_eq!(quick["context"]["id"], t.as_str());
    // Meta's "Reaction Message": no context; the message is named in reaction.message_id.
    let reaction = &got[3];
    assert_eq!(keys(reaction), with(&["reaction"]));
    assert_eq!(
        reaction["reaction"],
        json!({"message_id": b, "emoji": "👍"})
    );
}

#[tokio::test]
async fn media_location_contacts_and_ad_referrals_arrive_in_metas_shape() {
    let e = env().await;
    let user = "919800009100";
    let actions = [
        json!({"from": user, "type": "image", "caption": "Taj Mahal"}),
        json!({"from": user, "type": "location", "text": "Philz Coffee"}),
        json!({"from": user, "type": "contacts", "title": "Lucía Gómez", "id": "+1 (983) 555-2319"}),
        json!({"from": user, "text": "Hello! Can I get more info on this?", "referral": true}),
    ];
    let mut ids = Vec::new();
    for a in actions {
        let (s, v) = e.control("/sandbox/users/message", a).await;
        assert_eq!(s, 200, "{v}");
        ids.push(v["wamid"].as_str().unwrap().to_string());
    }
    let got = eventually(|| async {
        let msgs = e.capture.items("messages", "messages");
        let found: Vec<Value> = ids
            .iter()
            .filter_map(|id| msgs.iter().find(|m| m["id"] == id.as_str()).cloned())
            .collect();
        (found.len() == ids.len()).then_some(found)
    })
    .await;
    assert_eq!(got[0]["type"], "image");
    assert_eq!(
        keys(&got[0]["image"]),
        ["caption", "id", "mime_type", "sha256"]
    );
    assert_eq!(got[1]["type"], "location");
    for k in ["latitude", "longitude", "name", "address"] {
        assert!(got[1]["location"].get(k).is_some(), "{k}: {}", got[1]);
    }
    assert_eq!(got[2]["type"], "contacts");
    assert_eq!(got[2]["contacts"][0]["phones"][0]["wa_id"], "19835552319");
    assert_eq!(got[3]["type"], "text");
    assert_eq!(
        keys(&got[3]["referral"]),
        [
            "body",
            "ctwa_clid",
            "headline",
            "image_url",
            "media_type",
            "source_id",
            "source_type",
            "source_url",
            "welcome_message"
        ]
    );
    // A referral only comes with text; an unknown action names itself.
    let (s, v) = e
        .control(
            "/sandbox/users/message",
            json!({"from": user, "type": "image", "referral": true}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = e
        .control(
            "/sandbox/users/message",
            json!({"from": user, "type": "poll"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"],
        "type 'poll' is not one the sandbox can simulate"
    );
}

#[tokio::test]
async fn unknown_graph_versions_get_graphs_unknown_path_answer() {
    let e = env_with(|s| s.api_versions = vec!["v17.0".into()]).await;
    let http = reqwest::Client::new();
    let huge = format!("v{}", "1".repeat(10_000));
    for version in [huge.as_str(), "v2.80", "v99.0", "latest", "v18.0"] {
        let r = http
            .post(format!("{}/{version}/100000000000011/messages", e.base))
            .bearer_auth(super::TOKEN)
            .json(&text("919800009200"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{}", &version[..version.len().min(12)]);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], 2500, "{v}");
        assert_eq!(v["error"]["type"], "OAuthException");
        assert_eq!(
            v["error"]["error_data"]["details"],
            "Unknown path components: /100000000000011/messages"
        );
    }
    let r = http
        .get(format!("{}/v99.0/100000000000011", e.base))
        .bearer_auth(super::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Meta's current versions and the configured one are answered.
    for version in ["v19.0", "v23.0", "v27.0", "v17.0"] {
        let r = http
            .post(format!("{}/{version}/100000000000011/messages", e.base))
            .bearer_auth(super::TOKEN)
            .json(&template("919800009200", "hello_world"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{version}");
    }
    // The sandbox's own control API has no version.
    let r = http
        .get(format!("{}/sandbox/webhooks", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn inspection_keeps_the_last_messages_and_counts_the_dropped() {
    let e = env_with(|s| s.keep = 2).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let (s, v) = e
            .send(template(&format!("91980000930{i}"), "hello_world"))
            .await;
        assert_eq!(s, 200, "{v}");
        sent.push(wamid(&v));
    }
    let v = e.get("/sandbox/messages").await;
    let kept: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["wamid"].as_str().unwrap())
        .collect();
    assert_eq!(kept, [sent[1].as_str(), sent[2].as_str()]);
    assert_eq!(v["dropped"]["sent"], 1, "{v}");
}

/// End to end through Ringback: the missed-call reply's "Call me back" button, tapped in the
/// sandbox, is stored as an interactive reply (not an unknown type) that names the reply.
#[tokio::test]
async fn ringback_reads_a_sandbox_tap_on_call_me_back_as_an_interactive_reply() {
    let app = spawn_app().await;
    let user = "919876500777";
    app.user_writes(&format!("+{user}"), "hello").await;
    let db = Db::open(&app.settings.store_url).await;
    // The user's message is stored (their window is open) before the call, so the reply is
    // free-form text with buttons.
    eventually(|| async {
        let n: (i64,) = on_db!(&db, pool => sqlx::query_as("SELECT COUNT(*) FROM inbound_messages")
            .fetch_one(pool)
            .await
            .unwrap());
        (n.0 >= 1).then_some(())
    })
    .await;
    let r = app.missed_call("tap-1", &format!("+{user}")).await;
    assert_eq!(r.status(), 202);
    let call = app.decided_call("tap-1").await;
    assert_eq!(call["decision"], "replied", "{call}");
    let reply = eventually(|| async {
        app.sandbox_sent()
            .await
            .into_iter()
            .find(|m| m["to"] == user && m["type"] == "interactive")
    })
    .await;
    let button = &reply["body"]["interactive"]["action"]["buttons"][0]["reply"];
    assert_eq!(button["title"], "Call me back", "{reply}");
    let r = app
        .http
        .post(format!("{}/sandbox/users/message", app.sandbox))
        .json(
            &json!({"from": user, "type": "button_reply", "context": reply["wamid"],
            "id": button["id"], "title": button["title"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tap: Value = r.json().await.unwrap();
    let row: (String, Option<String>, Option<String>, bool, String) = eventually(|| async {
        on_db!(&db, pool => sqlx::query_as(
            "SELECT message_type, text, context_id, unknown_type, sender_id FROM inbound_messages WHERE wamid = $1",
        )
        .bind(tap["wamid"].as_str().unwrap())
        .fetch_optional(pool)
        .await
        .unwrap())
    })
    .await;
    db.close().await;
    assert_eq!(
        row,
        (
            "interactive".to_string(),
            Some("Call me back".to_string()),
            reply["wamid"].as_str().map(str::to_string),
            false,
            PNID.to_string()
        )
    );
}
