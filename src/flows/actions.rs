//! What a flow's actions do in the server: sends go through the send policy into the outbox
//! (so the lanes pace them as they pace API sends), HTTP steps make their request, a hand-off
//! marks the conversation.
//!
//! A send's idempotency key is `flow:{run}:{action key}` (the key names the action's number
//! in the run, its place with the loop items, and the attempt). A plain send's message is
//! written by the runner in the transaction that stores the step's outcome, so a crash leaves
//! both or neither; a call-permission request or a send that opens a free entry point is
//! queued here first (their bookkeeping is the outbox's), and a crash before the outcome is
//! stored asks again with the same key: the outbox answers with the message it already holds
//! — a run never sends twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::engine::{Action, Failure};
use super::send;
use crate::config::Settings;
use crate::outbox::submit::{NotQueued, Submission};
use crate::store::{NewMessage, Store};
use crate::time::Millis;

/// An action's outcome, and the message a send step leaves for the runner to write with it.
#[derive(Debug)]
pub struct Performed {
    pub outcome: Result<Value, Failure>,
    pub message: Option<NewMessage>,
}

/// What performing an action needs.
#[derive(Clone)]
pub struct Actions {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub templates: crate::template_registry::Registry,
    pub wakers: crate::outbox::Wakers,
    pub sender_status: crate::sender_status::SenderStatus,
    pub book: crate::calling::PermissionBook,
    pub http: reqwest::Client,
    pub assistants: crate::assistants::Assistants,
}

fn fail(code: &str, message: impl Into<String>, retryable: bool) -> Failure {
    Failure {
        code: code.into(),
        message: message.into(),
        retryable,
    }
}

impl Actions {
    /// Performs `action` of run `run_id` for `contact` (`{"phone", "name"}`); `trigger` names
    /// the business number the run started on (its `sender`), if any.
    pub async fn perform(
        &self,
        run_id: &str,
        action: &Action,
        contact: &Value,
        trigger: &Value,
        now: Millis,
        defer_sends: bool,
    ) -> Performed {
        if send::is_send(action.kind) {
            let from = trigger
                .pointer("/sender/phone_number_id")
                .and_then(Value::as_str);
            let key = format!("flow:{run_id}:{}", action.key);
            return self
                .send(
                    action,
                    contact["phone"].as_str(),
                    from,
                    key,
                    now,
                    defer_sends,
                )
                .await;
        }
        let outcome = match action.kind {
            "http" => {
                http_request(
                    &self.http,
                    &action.input,
                    self.settings.flows.http_timeout,
                    Some(self.settings.flows.allow_private_addresses),
                )
                .await
            }
            "hand_off" => self.hand_off(run_id, action, contact, trigger).await,
            "generate_reply" => generate_reply(&self.assistants, &action.input).await,
            other => Err(fail(
                "unsupported",
                format!("a {other} step cannot run here"),
                false,
            )),
        };
        Performed {
            outcome,
            message: None,
        }
    }

    /// Wakes the lane of a message a run's save wrote.
    pub fn saved(&self, sender_id: &str) {
        self.wakers.wake(sender_id);
    }

    /// Marks the customer's conversation as a person's: the number's assistant stops
    /// answering it (`GET /api/v1/conversations/{id}` shows `hand_off`).
    async fn hand_off(
        &self,
        run_id: &str,
        action: &Action,
        contact: &Value,
        trigger: &Value,
    ) -> Result<Value, Failure> {
        let note = action.input["note"].as_str().unwrap_or_default();
        let from = trigger
            .pointer("/sender/phone_number_id")
            .and_then(Value::as_str);
        let sender = self
            .settings
            .sender(from)
            .map_err(|e| fail("unknown_sender", e, false))?;
        let Some(phone) = contact["phone"]
            .as_str()
            .and_then(|p| crate::phone::PhoneE164::parse_international(p).ok())
        else {
            return Err(fail(
                "invalid_phone",
                "the run has no customer phone number to hand off",
                false,
            ));
        };
        let reason = if note.is_empty() {
            format!("handed off by flow run {run_id}")
        } else {
            format!("handed off by flow run {run_id}: {note}")
        };
        let conversation = crate::assistants::auto_reply::hand_to_person(
            self.store.as_ref(),
            &sender.phone_number_id,
            phone.digits(),
            &reason,
        )
        .await
        .map_err(|e| fail("store_unavailable", e.to_string(), true))?;
        Ok(
            json!({"handed_off": true, "note": action.input["note"], "conversation_id": conversation}),
        )
    }

    /// Queues the send. A plain message (no call-permission limits, no free entry point to
    /// open) is not written here: it goes back to the runner, which writes it with the
    /// step's outcome in one transaction, so a crash leaves both or neither. Other sends are
    /// queued now; asked again after a crash (same key), the outbox answers with the message
    /// it already holds. When the send fails, the key is looked up: the world may have
    /// changed since the first ask (a window closed), but a message that was queued then
    /// stands.
    async fn send(
        &self,
        action: &Action,
        phone: Option<&str>,
        from: Option<&str>,
        key: String,
        now: Millis,
        defer: bool,
    ) -> Performed {
        match self
            .queue(action, phone, from, key.clone(), now, defer)
            .await
        {
            // A store failure may come after the row was written (recording the free entry
            // point or the permission request): the message stands then too, and retrying
            // the step (with the next attempt's key) would send it twice.
            Err(f) => {
                let outcome = match self.store.message_by_idempotency_key(&key).await {
                    Ok(Some(id)) => {
                        Ok(json!({"status": "queued", "message_id": id, "duplicate": true}))
                    }
                    _ => Err(f),
                };
                Performed {
                    outcome,
                    message: None,
                }
            }
            Ok((output, message)) => Performed {
                outcome: Ok(output),
                message,
            },
        }
    }

    async fn queue(
        &self,
        action: &Action,
        phone: Option<&str>,
        from: Option<&str>,
        key: String,
        now: Millis,
        defer: bool,
    ) -> Result<(Value, Option<NewMessage>), Failure> {
        let store_failed =
            |e: crate::store::StoreError| fail("store_unavailable", e.to_string(), true);
        let s = send::from_action(action.kind, &action.input, phone)
            .map_err(|e| fail(e.code, e.message, false))?;
        let sender = self
            .settings
            .sender(from)
            .map_err(|e| fail("unknown_sender", e, false))?;
        let status = self.sender_status.get(&sender.phone_number_id);
        if !status.online {
            return Err(fail(
                "sender_offline",
                format!(
                    "number {} is offline: {}",
                    sender.display_number,
                    status.reason.as_deref().unwrap_or("unknown")
                ),
                true,
            ));
        }
        let submitter = crate::outbox::submit::Submitter {
            store: self.store.as_ref(),
            templates: &self.templates,
            book: &self.book,
            wakers: &self.wakers,
        };
        let not_queued = |e: NotQueued| match e {
            NotQueued::Refused(r) => fail(r.code(), r.to_string(), false),
            NotQueued::CallingUnavailable(why) => fail("calling_unavailable", why, false),
            NotQueued::PermissionLimit { code, message } => fail(code, message, false),
            // Only a person's send is refused for an offline number (this step checks
            // the number itself before sending).
            NotQueued::SenderOffline(why) => fail("sender_offline", why, true),
            NotQueued::Store(e) => store_failed(e),
        };
        let ready = submitter
            .prepare(Submission {
                sender,
                to: &s.to,
                message: s.message,
                fallback: s.fallback,
                idempotency_key: Some(key),
                origin: "sent by a flow",
                now,
            })
            .await
            .map_err(not_queued)?;
        let output = |id: &str, kind: &str, reason: &str, duplicate: bool| {
            json!({
                "status": "queued", "message_id": id, "to": s.to.as_str(), "type": kind,
                "reason": reason, "duplicate": duplicate,
            })
        };
        if defer && ready.is_plain() {
            let m = &ready.message;
            return Ok((
                output(&m.id, &m.kind, &m.reason, false),
                Some(ready.message),
            ));
        }
        let queued = submitter.queue(ready).await.map_err(not_queued)?;
        Ok((
            output(&queued.id, &queued.kind, &queued.reason, queued.duplicate),
            None,
        ))
    }
}

/// An HTTP step's request: `{method, url, headers, body, timeout}` → `{status, body}` (the
/// body parsed as JSON when it is). 429 and 5xx are retryable failures, other non-2xx final
/// ones. With `allow_private` given, the URL is checked as webhook endpoints are (no loopback,
/// private or link-local address unless allowed); `None` skips the check (a trial).
pub async fn http_request(
    client: &reqwest::Client,
    input: &Value,
    default_timeout: Duration,
    allow_private: Option<bool>,
) -> Result<Value, Failure> {
    let method = input["method"].as_str().unwrap_or("GET");
    let url = input["url"].as_str().unwrap_or_default();
    if let Some(allow) = allow_private {
        crate::outbound_webhooks::address::check_url(url, allow)
            .await
            .map_err(|e| fail("http_refused", e, false))?;
    }
    let timeout = input["timeout"]
        .as_str()
        .and_then(|t| super::check::parse_duration(t).ok())
        .map(|s| Duration::from_secs(s.max(1) as u64))
        .unwrap_or(default_timeout);
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(method, url).timeout(timeout);
    if let Some(h) = input["headers"].as_object() {
        for (k, v) in h {
            req = req.header(k, v.as_str().unwrap_or_default());
        }
    }
    if !input["body"].is_null() {
        req = req.json(&input["body"]);
    }
    let response = req
        .send()
        .await
        .map_err(|e| fail("http_error", format!("{url}: {e}"), true))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    if !(200..300).contains(&status) {
        return Err(fail(
            "http_status",
            format!("{url} answered {status}: {body}"),
            status >= 500 || status == 429,
        ));
    }
    Ok(json!({"status": status, "body": body}))
}

/// A `generate_reply` step: the assistant's reply through the same code as
/// `POST /api/v1/assistants/{name}/replies`. The output is the reply (`reply`, `parts`,
/// `conversation_id`, `handed_off`, `source`, `usage`); a model that fails is a hand-off in
/// the output, not a step failure, so the flow can send the hand-off message and branch on
/// `steps.<id>.handed_off`.
pub async fn generate_reply(
    assistants: &crate::assistants::Assistants,
    input: &Value,
) -> Result<Value, Failure> {
    use crate::assistants::{Ask, AskError};
    let name = input["assistant"].as_str().unwrap_or_default();
    let ask = Ask {
        customer_id: input["customer"].as_str().unwrap_or_default().to_string(),
        message: input["message"].as_str().unwrap_or_default().to_string(),
        variables: input["variables"].as_object().cloned().unwrap_or_default(),
    };
    match assistants.reply(name, ask).await {
        Ok(reply) => Ok(serde_json::to_value(reply).unwrap_or(Value::Null)),
        Err(AskError::NotFound(n)) => Err(fail(
            "no_assistant",
            format!("no assistant is named \"{n}\"; declare it under [[assistants]]"),
            false,
        )),
        Err(AskError::Invalid(m)) => Err(fail("invalid_input", m, false)),
        Err(AskError::Store(e)) => Err(fail("store_unavailable", e.to_string(), true)),
    }
}
