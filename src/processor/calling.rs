//! What the processor does for WhatsApp Business Calling: permission replies, calls that
//! change a permission, business-initiated call progress, and the ringing-call rejecter.
//!
//! Permission changes go through the [`crate::calling::PermissionBook`], which is idempotent
//! per message or call id, so an event processed again after a crash changes nothing twice.

use serde_json::Value;

use super::Processor;
use crate::calling::permission::Input;
use crate::inbound::{CallEvent, CallOutcome, CallSource, InboundMessage};
use crate::phone::PhoneE164;
use crate::store::StoreError;
use crate::time::now_ms;

impl Processor {
    /// A `call_permission_reply` message: the user accepted or declined (or WhatsApp granted
    /// automatically after a call). Returns a note for the event, or None if not a reply.
    pub(super) async fn call_permission_reply(
        &self,
        m: &InboundMessage,
    ) -> Result<Option<String>, StoreError> {
        let Some(reply) = m
            .payload
            .pointer("/interactive/call_permission_reply")
            .filter(|_| {
                m.payload
                    .pointer("/interactive/type")
                    .and_then(Value::as_str)
                    == Some("call_permission_reply")
            })
        else {
            return Ok(None);
        };
        let Some(user) = m.from_wa_id.as_deref().or(m.from_user_id.as_deref()) else {
            return Ok(Some(
                "call permission reply without a sender; ignored".into(),
            ));
        };
        let accept = match reply.get("response").and_then(Value::as_str) {
            Some("accept") => true,
            Some("reject") => false,
            other => {
                return Ok(Some(format!(
                    "call permission reply with response {other:?} (expected accept or reject); not applied"
                )));
            }
        };
        let automatic = reply.get("response_source").and_then(Value::as_str) == Some("automatic");
        let now = now_ms();
        let record = self.book.get(&m.phone_number_id, user).await?;
        // A reply must answer something: a request we sent (still within its 7 days), an
        // earlier answer the user is changing, or — for automatic grants — a call.
        let answers_something = automatic
            || !record.requests.is_empty()
            || record.status != crate::calling::PermissionStatus::None;
        if !answers_something {
            tracing::warn!(phone_number_id = %m.phone_number_id, user, "Call permission reply to no request Ringback sent; recorded, not applied.");
            return Ok(Some(
                "call permission reply for a request Ringback never sent; not applied".into(),
            ));
        }
        let input = Input::Reply {
            origin: m.wamid.clone(),
            accept,
            permanent: reply
                .get("is_permanent")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            expires_at: reply
                .get("expiration_timestamp")
                .and_then(Value::as_i64)
                .and_then(|s| s.checked_mul(1000)),
            automatic,
        };
        let changes = self
            .book
            .apply(&m.phone_number_id, user, input, now)
            .await?;
        Ok(Some(match changes.last() {
            Some(c) => format!(
                "call permission {} → {} ({})",
                c.from.as_str(),
                c.to.as_str(),
                c.reason
            ),
            None => "call permission reply already applied".into(),
        }))
    }

    /// A user's WhatsApp call: schedule the rejecter while it rings; when it ends, a connected
    /// call resets the request limits, and callback permission grants a temporary permission.
    pub(super) async fn whatsapp_user_call(
        &self,
        call: &CallEvent,
        sender: &crate::config::Sender,
    ) -> Result<(), StoreError> {
        if call.source != CallSource::Whatsapp {
            return Ok(());
        }
        let Some(user) = PhoneE164::from_wa_id(&call.from_raw) else {
            return Ok(());
        };
        if call.outcome == CallOutcome::Ringing {
            if let Some(r) = &self.rejecter {
                r.schedule(call, &sender.phone_number_id, &sender.access_token);
            }
            return Ok(());
        }
        let c = &self.settings.calling;
        let input = Input::UserCalled {
            origin: call.provider_call_id.clone(),
            connected: call.outcome == CallOutcome::Answered,
            callback_permission: c.callback_permission && c.status == "ENABLED",
        };
        self.book
            .apply(&sender.phone_number_id, user.digits(), input, now_ms())
            .await?;
        Ok(())
    }

    /// The `calls` field for business-initiated calls: `connect`, `statuses` (RINGING,
    /// ACCEPTED, REJECTED) and `terminate`. Updates the call's row; an ended call counts as
    /// answered or unanswered for the permission (4 unanswered in a row revoke it).
    pub(super) async fn business_call_update(&self, value: &Value) -> Result<String, StoreError> {
        let text = |k: &str| value.get(k).and_then(Value::as_str);
        let Some(wacid) = text("id") else {
            return Ok("business call update without an id; kept".into());
        };
        let found = match self.store.business_call_by_wacid(wacid).await? {
            Some(c) => Some(c),
            // Our id rides in biz_opaque_callback_data: the webhook may beat Meta's answer.
            None => match text("biz_opaque_callback_data") {
                Some(ours) => self.store.business_call(ours).await?,
                None => None,
            },
        };
        let Some(mut call) = found else {
            return Ok(format!(
                "update for call {wacid}, which Ringback did not place; kept"
            ));
        };
        if call.wacid.is_none() {
            call.wacid = Some(wacid.to_string());
        }
        if call.is_final() {
            return Ok(format!(
                "call {wacid} already ended ({}); kept",
                call.status
            ));
        }
        let now = now_ms();
        let (status, ended) = match (text("event"), text("status")) {
            (Some("connect"), _) => (call.status.clone(), None),
            (Some("terminate"), status) => {
                let duration = value.get("duration").and_then(Value::as_u64);
                call.duration = duration.map(|d| d.min(u64::from(u32::MAX)) as u32);
                // Answered if Meta says so in any way: a duration or start time (present only
                // for answered calls), COMPLETED, or an ACCEPTED status seen earlier.
                let answered = duration.is_some_and(|d| d > 0)
                    || value.get("start_time").is_some()
                    || status == Some("COMPLETED")
                    || call.status == "accepted";
                let outcome = match (answered, call.status.as_str()) {
                    (true, _) => "completed",
                    (false, "declined") => "rejected",
                    _ => "unanswered",
                };
                (outcome.to_string(), Some(answered))
            }
            // REJECTED is followed by terminate, which makes the call `rejected` (final).
            (None, Some("REJECTED")) => ("declined".to_string(), None),
            (None, Some(s @ ("RINGING" | "ACCEPTED"))) => (s.to_ascii_lowercase(), None),
            (e, s) => return Ok(format!("call update {e:?}/{s:?} not understood; kept")),
        };
        call.status = status;
        call.updated_at = now;
        if let Some(errors) = value.get("errors").and_then(Value::as_array) {
            call.reason = errors
                .first()
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        // The permission first: it is idempotent per call id, and once the row says the call
        // ended, a reprocessed event stops at `is_final` above.
        if let Some(answered) = ended {
            let input = Input::BusinessCallEnded {
                origin: wacid.to_string(),
                answered,
            };
            self.book
                .apply(&call.sender_id, &call.user_id, input, now)
                .await?;
        }
        self.store.save_business_call(&call).await?;
        Ok(format!("business call {wacid}: {}", call.status))
    }
}
