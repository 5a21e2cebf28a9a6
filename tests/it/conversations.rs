//! Conversations and events over HTTP: each cause that starts a conversation, the ways one
//! ends, the `conversation.ended` payload, the events API and its live stream.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// Published events of `types` (comma-separated; all when empty), oldest first.
pub async fn events(app: &TestApp, types: &str) -> Vec<Value> {
    app.list(&format!(
        "{}/api/v1/events?limit=1000&types={types}",
        app.base
    ))
    .await
}

/// The conversations of one customer, newest first.
async fn conversations_of(app: &TestApp, contact: &str) -> Vec<Value> {
    let contact = contact.trim_start_matches('+');
    app.list(&format!(
        "{}/api/v1/conversations?contact={contact}",
        app.base
    ))
    .await
}

/// Waits until `contact` has a conversation matching `ok`; returns it with its transcript.
async fn conversation_where(app: &TestApp, contact: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let id = eventually(|| async {
        conversations_of(app, contact)
            .await
            .into_iter()
            .find(|c| ok(c))
            .map(|c| c["id"].as_str().unwrap().to_string())
    })
    .await;
    app.get_json(&format!("{}/api/v1/conversations/{id}", app.base))
        .await
}

/// The types of `events`, in order, for one conversation.
fn types_of(events: &[Value], conversation: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["conversation_id"] == conversation)
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// A customer's text message with a Meta timestamp (unix seconds).
fn text_at(from: &str, wamid: &str, text: &str, unix_seconds: i64) -> Value {
    wa_envelope(json!({
        "contacts": [{"profile": {"name": "Ravi"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": unix_seconds.to_string(), "type": "text", "text": {"body": text}}]
    }))
}

fn now_s() -> i64 {
    ringback::time::now_ms() / 1000
}

#[tokio::test]
async fn a_customer_message_starts_an_inbound_conversation() {
    let app = spawn_app().await;
    app.user_writes("+919876500001", "Are you open today?")
        .await;
    let c = conversation_where(&app, "+919876500001", |c| c["message_count"] == 1).await;
    assert_eq!(c["type"], "inbound", "{c}");
    assert_eq!(c["state"], "open");
    assert_eq!(c["customer"]["phone"], "+919876500001");
    assert_eq!(c["customer"]["name"], "Asha");
    assert_eq!(c["sender"]["phone"], BUSINESS);
    let line = &c["transcript"][0];
    assert_eq!(line["direction"], "inbound", "{c}");
    assert_eq!(line["text"], "Are you open today?");
    assert_eq!(line["status"], "received");
    let id = c["id"].as_str().unwrap();
    let all = events(&app, "").await;
    assert_eq!(
        types_of(&all, id),
        ["conversation.started", "message.received"],
        "{all:?}"
    );
}

#[tokio::test]
async fn a_missed_call_reply_starts_a_missed_call_conversation() {
    let app = spawn_app().await;
    assert_eq!(
        app.missed_call("conv-1", "+919876500002").await.status(),
        202
    );
    let c = conversation_where(&app, "+919876500002", |c| c["message_count"] == 1).await;
    assert_eq!(c["type"], "missed_call", "{c}");
    assert_eq!(c["transcript"][0]["direction"], "outbound");
    assert_eq!(c["transcript"][0]["type"], "template");
    // The sandbox reports sent then delivered: the line follows.
    let id = c["id"].as_str().unwrap().to_string();
    let all = eventually(|| async {
        let all = events(&app, "").await;
        types_of(&all, &id)
            .contains(&"message.delivered".to_string())
            .then_some(all)
    })
    .await;
    // `message.read` may follow: the sandbox's users read a share of what they get.
    assert_eq!(
        types_of(&all, &id)[..3],
        ["conversation.started", "message.sent", "message.delivered"],
        "{all:?}"
    );
    // The call's events come first: they are published before the reply is accepted.
    let kinds: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..2], ["call.missed", "call.completed"], "{kinds:?}");
    assert_eq!(all[0]["data"]["call"]["call_id"], "conv-1");
    assert_eq!(all[0]["data"]["call"]["caller"], "+919876500002");
    let shown = app
        .get_json(&format!("{}/api/v1/conversations/{id}", app.base))
        .await;
    let status = &shown["transcript"][0]["status"];
    assert!(status == "delivered" || status == "read", "{shown}");
}

#[tokio::test]
async fn an_api_send_starts_an_api_conversation() {
    let app = spawn_app().await;
    app.templates_synced().await;
    let (status, sent) = app
        .send_message(json!({"to": "+919876500003", "template": {"name": "hello_world", "language": "en_US"}}))
        .await;
    assert_eq!(status, 202, "{sent}");
    let c = conversation_where(&app, "+919876500003", |c| c["message_count"] == 1).await;
    assert_eq!(c["type"], "api", "{c}");
    assert_eq!(c["transcript"][0]["message_id"], sent["id"]);
}

#[tokio::test]
async fn a_quiet_conversation_ends_of_inactivity_and_the_next_message_starts_another() {
    let app = spawn_app().await;
    // Written 25 hours ago (Meta's timestamp): the 24-hour period has passed since.
    let then = now_s() - 25 * 3600;
    let r = app
        .whatsapp(&text_at("919876500004", "wamid.old", "old question", then))
        .await;
    assert_eq!(r.status(), 200);
    let ended = conversation_where(&app, "919876500004", |c| c["state"] == "ended").await;
    assert_eq!(ended["end_reason"], "inactivity", "{ended}");
    assert_eq!(
        ended["ended_at"],
        then * 1000 + 24 * 3_600_000,
        "it ended when it went quiet, not when it was noticed"
    );
    let r = app
        .whatsapp(&text_at(
            "919876500004",
            "wamid.new",
            "new question",
            now_s(),
        ))
        .await;
    assert_eq!(r.status(), 200);
    let open = conversation_where(&app, "919876500004", |c| c["state"] == "open").await;
    assert_ne!(open["id"], ended["id"]);
    assert_eq!(open["transcript"][0]["text"], "new question");
    let all = events(&app, "conversation.ended").await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["data"]["end_reason"], "inactivity");
    assert_eq!(all[0]["data"]["transcript"][0]["text"], "old question");
}

#[tokio::test]
async fn closing_by_hand_ends_it_once_and_the_customer_writing_again_starts_a_new_one() {
    let app = spawn_app().await;
    app.user_writes("+919876500005", "hello").await;
    let c = conversation_where(&app, "+919876500005", |c| c["state"] == "open").await;
    let id = c["id"].as_str().unwrap();
    let close = |id: String| {
        let app = &app;
        async move {
            app.http
                .post(format!("{}/api/v1/conversations/{id}/close", app.base))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(close(id.into()).await.status(), 202);
    let ended = conversation_where(&app, "+919876500005", |c| c["state"] == "ended").await;
    assert_eq!(ended["end_reason"], "closed", "{ended}");
    let again = close(id.into()).await;
    assert_eq!(again.status(), 409);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conversation_ended", "{body}");
    assert_eq!(close("conv_nope".into()).await.status(), 404);
    let bad = app
        .http
        .get(format!("{}/api/v1/conversations?from=yesterday", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_query", "{body}");
    let ended_only = app
        .list(&format!(
            "{}/api/v1/conversations?state=ended&from=2020-01-01T00:00:00Z",
            app.base
        ))
        .await;
    assert_eq!(ended_only.len(), 1, "{ended_only:?}");
    app.user_writes("+919876500005", "me again").await;
    let open = conversation_where(&app, "+919876500005", |c| c["state"] == "open").await;
    assert_ne!(open["id"], ended["id"]);
}

#[tokio::test]
async fn conversation_ended_carries_the_whole_transcript_field_by_field() {
    let app = spawn_app().await;
    let from = "919876500006";
    let at = now_s();
    let message = |id: &str, kind: &str, part: Value| {
        let mut m = json!({"from": from, "id": id, "timestamp": at.to_string(), "type": kind});
        m.as_object_mut()
            .unwrap()
            .extend(part.as_object().unwrap().clone());
        m
    };
    // The first message goes through the sandbox, which then knows the window is open.
    app.user_writes(&format!("+{from}"), "Do you deliver?")
        .await;
    conversation_where(&app, from, |c| c["message_count"] == 1).await;
    let body = wa_envelope(json!({
        "contacts": [{"profile": {"name": "Ravi"}, "wa_id": from}],
        "messages": [
            message("wamid.i1", "image", json!({"image": {"id": "media1", "mime_type": "image/jpeg", "caption": "this cake"}})),
            message("wamid.b1", "interactive", json!({"interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}}})),
            message("wamid.r1", "reaction", json!({"reaction": {"message_id": "wamid.x1", "emoji": "👍"}})),
        ]
    }));
    assert_eq!(app.whatsapp(&body).await.status(), 200);
    let c = conversation_where(&app, from, |c| c["message_count"] == 4).await;
    let id = c["id"].as_str().unwrap().to_string();
    // Our reply inside the window.
    let (status, sent) = app
        .send_message(json!({"to": format!("+{from}"), "text": "Yes, we deliver."}))
        .await;
    assert_eq!(status, 202, "{sent}");
    app.message_in_state(sent["id"].as_str().unwrap(), "delivered")
        .await;
    conversation_where(&app, from, |c| c["message_count"] == 5).await;
    let r = app
        .http
        .post(format!("{}/api/v1/conversations/{id}/close", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let ended =
        eventually(|| async { events(&app, "conversation.ended").await.into_iter().next() }).await;
    assert_eq!(ended["conversation_id"], id.as_str());
    assert_eq!(ended["version"], "2026-12-01");
    let d = &ended["data"];
    assert_eq!(d["conversation_id"], id.as_str());
    assert_eq!(d["conversation_type"], "inbound");
    assert_eq!(d["end_reason"], "closed");
    assert_eq!(d["customer_phone"], format!("+{from}"));
    assert_eq!(d["customer_name"], "Ravi");
    assert_eq!(d["sender_phone"], BUSINESS);
    assert_eq!(
        d["sender_display_name"],
        app.settings.senders[0].business_name
    );
    assert_eq!(d["sender_phone_number_id"], PNID);
    assert_eq!(d["message_count"], 5);
    assert_eq!(d["created_at"], c["started_at"]);
    assert!(
        d["ended_at"].as_i64().unwrap() >= d["created_at"].as_i64().unwrap(),
        "{d}"
    );
    assert_eq!(d["extracted_variables"], json!({}));
    assert_eq!(d["input_variables"], json!({}));
    let lines: Vec<(String, String, String)> = d["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["direction"].as_str().unwrap().to_string(),
                l["type"].as_str().unwrap().to_string(),
                l["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let line = |d: &str, t: &str, x: &str| (d.to_string(), t.to_string(), x.to_string());
    assert_eq!(
        lines,
        [
            line("inbound", "text", "Do you deliver?"),
            line("inbound", "image", "[image] this cake"),
            line(
                "inbound",
                "interactive",
                "[button reply \"Yes please\" (yes)]"
            ),
            line("inbound", "reaction", "[reaction 👍 to wamid.x1]"),
            line("outbound", "text", "Yes, we deliver."),
        ],
        "{d}"
    );
    let text = d["transcript_text"].as_str().unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with("Customer: Do you deliver?"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .ends_with("Business: Yes, we deliver."),
        "{text}"
    );
}

#[tokio::test]
async fn events_are_read_by_cursor_and_by_type_and_bad_queries_are_refused() {
    let app = spawn_app().await;
    app.user_writes("+919876500007", "one").await;
    app.user_writes("+919876500007", "two").await;
    let all = eventually(|| async {
        let all = events(&app, "").await;
        (all.len() == 3).then_some(all)
    })
    .await;
    let first = all[0]["id"].as_i64().unwrap();
    let page = app
        .get_json(&format!("{}/api/v1/events?after={first}&limit=1", app.base))
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], all[1]["id"]);
    assert_eq!(page["next_cursor"], all[1]["id"]);
    let received = events(&app, "message.received").await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[1]["data"]["message"]["text"], "two");
    let bad = app
        .http
        .get(format!("{}/api/v1/events?types=message.recieved", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown event type 'message.recieved'"),
        "{body}"
    );
}

/// Reads `n` Server-Sent Events from a stream response: (id, type, data).
async fn read_sse(mut r: reqwest::Response, n: usize) -> Vec<(i64, String, Value)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .expect("an event within 10 s")
            .expect("stream bytes")
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                block.lines().find_map(|l| {
                    l.strip_prefix(&format!("{name}:"))
                        .map(|v| v.trim().to_string())
                })
            };
            if let (Some(id), Some(kind), Some(data)) = (field("id"), field("event"), field("data"))
            {
                out.push((
                    id.parse().unwrap(),
                    kind,
                    serde_json::from_str(&data).unwrap(),
                ));
            }
        }
    }
    out.truncate(n);
    out
}

#[tokio::test]
async fn the_event_stream_resumes_after_a_disconnect_with_last_event_id() {
    let app = spawn_app().await;
    let stream = |last: Option<i64>| {
        let app = &app;
        async move {
            let mut req = app
                .http
                .get(format!("{}/api/v1/events/stream?after=0", app.base));
            if let Some(last) = last {
                req = req.header("Last-Event-ID", last.to_string());
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/event-stream")
            );
            r
        }
    };
    let live = stream(None).await;
    app.user_writes("+919876500008", "first").await;
    let got = read_sse(live, 2).await;
    assert_eq!(got[0].1, "conversation.started");
    assert_eq!(got[1].1, "message.received");
    assert_eq!(got[1].2["data"]["message"]["text"], "first");
    // Disconnected (the response is dropped); more happens meanwhile.
    app.user_writes("+919876500008", "second").await;
    app.user_writes("+919876500008", "third").await;
    let resumed = read_sse(stream(Some(got[1].0)).await, 2).await;
    let texts: Vec<&Value> = resumed
        .iter()
        .map(|e| &e.2["data"]["message"]["text"])
        .collect();
    assert_eq!(texts, [&json!("second"), &json!("third")], "{resumed:?}");
    assert!(resumed[0].0 > got[1].0);
}

#[tokio::test]
async fn a_missed_whatsapp_call_starts_a_missed_call_conversation() {
    let app = crate::calling::calling_app(&[]).await;
    let user = "+919800700051";
    let (_, connect) = crate::calling::post(
        &app,
        format!("{}/sandbox/users/call", app.sandbox),
        json!({"from": user, "event": "connect"}),
    )
    .await;
    let call_id = connect["call_id"].as_str().unwrap().to_string();
    // The caller hangs up before anyone answers.
    crate::calling::post(
        &app,
        format!("{}/sandbox/users/call", app.sandbox),
        json!({"from": user, "event": "terminate", "call_id": call_id}),
    )
    .await;
    // The call, the reply it gets on WhatsApp (the call opened the window), and maybe the
    // user's answer to the permission request the reply carries.
    let all = eventually(|| async {
        let all = events(&app, "").await;
        all.iter()
            .any(|e| e["type"] == "message.sent")
            .then_some(all)
    })
    .await;
    let c = conversation_where(&app, user, |_| true).await;
    assert_eq!(c["type"], "missed_call", "{c}");
    assert_eq!(c["transcript"][0]["type"], "call", "{c}");
    assert_eq!(c["transcript"][0]["text"], "[call missed]");
    let lines = c["transcript"].as_array().unwrap();
    assert!(
        lines.iter().any(|l| l["direction"] == "outbound"),
        "the reply joins it: {c}"
    );
    let id = c["id"].as_str().unwrap();
    let kinds = types_of(&all, id);
    assert_eq!(
        &kinds[..3],
        ["conversation.started", "call.missed", "call.completed"],
        "{all:?}"
    );
    assert!(kinds.contains(&"message.sent".to_string()), "{kinds:?}");
    // The call and the messages are in it (the permission the call granted came first).
    assert!(
        all.iter()
            .filter(|e| e["type"] != "call.permission_changed")
            .all(|e| e["conversation_id"] == id),
        "nothing of this caller is outside the conversation: {all:?}"
    );
    assert_eq!(all[0]["type"], "call.permission_changed", "{all:?}");
    assert_eq!(all[0]["data"]["to"], "accepted");
    let permission = lines
        .iter()
        .find(|l| l["type"] == "interactive" && l["direction"] == "inbound");
    if let Some(l) = permission {
        assert!(
            l["text"].as_str().unwrap().starts_with("[call permission"),
            "{l}"
        );
    }
}

/// A reply still on its way when the conversation is closed belongs to it: the transcript in
/// `conversation.ended` has it, in the state it was in.
#[tokio::test]
async fn a_message_still_being_sent_when_the_conversation_ends_is_in_its_transcript() {
    // No status webhooks: Meta's answer, 3 s late, is the only news of the send.
    let app = spawn_app_with(&[("RINGBACK_SANDBOX__STATUSES", "false")]).await;
    app.user_writes("+919876500009", "are you there?").await;
    let c = conversation_where(&app, "+919876500009", |c| c["message_count"] == 1).await;
    // Meta takes 3 s to answer from now on: the reply stays in flight.
    app.sandbox_post(
        "faults",
        json!({"phone_number_id": PNID, "latency_ms": 3000}),
    )
    .await;
    let (status, sent) = app
        .send_message(json!({"to": "+919876500009", "text": "One moment please"}))
        .await;
    assert_eq!(status, 202, "{sent}");
    app.message_in_state(sent["id"].as_str().unwrap(), "sending")
        .await;
    let r = app
        .http
        .post(format!(
            "{}/api/v1/conversations/{}/close",
            app.base,
            c["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let ended =
        eventually(|| async { events(&app, "conversation.ended").await.into_iter().next() }).await;
    let lines = ended["data"]["transcript"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{ended}");
    assert_eq!(lines[1]["message_id"], sent["id"]);
    assert_eq!(lines[1]["status"], "sending", "{ended}");
    assert_eq!(ended["data"]["message_count"], 2);
    // Once Meta answers, its `message.sent` names the conversation it belonged to.
    let sent_event =
        eventually(|| async { events(&app, "message.sent").await.into_iter().next() }).await;
    assert_eq!(sent_event["conversation_id"], c["id"]);
}

#[tokio::test]
async fn the_cli_lists_conversations_and_manages_webhook_endpoints() {
    let app = spawn_app().await;
    app.user_writes("+919876500010", "hello from the cli test")
        .await;
    let c = conversation_where(&app, "+919876500010", |c| c["message_count"] == 1).await;
    let id = c["id"].as_str().unwrap();
    let list = crate::durability::cli(&app, &["conversations", "--state", "open"]).await;
    assert!(
        list.contains(id) && list.contains("+919876500010"),
        "{list}"
    );
    let shown = crate::durability::cli(&app, &["conversations", "show", id]).await;
    assert!(
        shown.contains("Customer: hello from the cli test"),
        "{shown}"
    );
    let added = crate::durability::cli(
        &app,
        &[
            "webhooks",
            "add",
            "--url",
            "http://127.0.0.1:9/hook",
            "--events",
            "call.missed,conversation.ended",
        ],
    )
    .await;
    assert!(
        added.contains("whsec_"),
        "the secret is shown once: {added}"
    );
    let listed = crate::durability::cli(&app, &["webhooks", "list"]).await;
    assert!(
        listed.contains("[call.missed,conversation.ended]"),
        "{listed}"
    );
    let closed = crate::durability::cli(&app, &["conversations", "close", id]).await;
    assert!(closed.contains("will be closed"), "{closed}");
    conversation_where(&app, "+919876500010", |c| c["end_reason"] == "closed").await;
}

#[tokio::test]
async fn an_opt_out_ends_the_conversation_with_the_stop_message_in_it() {
    let app = spawn_app().await;
    app.user_writes("+919876500011", "hello").await;
    app.user_writes("+919876500011", "STOP").await;
    let ended = conversation_where(&app, "+919876500011", |c| c["state"] == "ended").await;
    assert_eq!(ended["end_reason"], "opt_out", "{ended}");
    let texts: Vec<&str> = ended["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["direction"] == "inbound")
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hello", "STOP"], "{ended}");
    let confirmation = ended["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["direction"] == "outbound");
    assert!(
        confirmation.is_some(),
        "the opt-out confirmation is part of it: {ended}"
    );
    let consent =
        eventually(|| async { events(&app, "consent.changed").await.into_iter().next() }).await;
    assert_eq!(consent["data"]["action"], "opt_out");
    assert_eq!(consent["conversation_id"], ended["id"]);
}

#[tokio::test]
async fn an_answered_call_is_answered_then_completed_with_its_duration() {
    let app = spawn_app().await;
    let r = app
        .call(json!({"call_id": "talk-1", "from": "+919876500012", "to": BUSINESS, "status": "answered",
            "ring_seconds": 4, "duration": 62}))
        .await;
    assert_eq!(r.status(), 202);
    let all = eventually(|| async {
        let all = events(&app, "call.answered,call.completed").await;
        (all.len() == 2).then_some(all)
    })
    .await;
    assert_eq!(all[0]["type"], "call.answered");
    assert_eq!(all[1]["type"], "call.completed");
    let call = &all[1]["data"]["call"];
    assert_eq!(call["outcome"], "answered", "{call}");
    assert_eq!(call["talk_seconds"], 62, "{call}");
    assert_eq!(call["ring_seconds"], 4, "{call}");
    assert!(events(&app, "call.missed").await.is_empty());
}
