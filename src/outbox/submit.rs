//! Queueing a message someone asked for — an API send or a flow's step — after the checks
//! every such send passes: the send policy (the Cloud API rule book, the 24-hour window,
//! consent), and for a call-permission request Meta's limits on those; then the row, the call
//! permission's and the free entry point's bookkeeping, and the lane's wake-up. The missed-call
//! reply takes its own road (the processor decides and queues in one transaction).

use serde_json::Value;

use crate::calling::PermissionBook;
use crate::config::Sender;
use crate::phone::PhoneE164;
use crate::policy::{self, Outgoing, Refusal};
use crate::store::{Enqueued, NewMessage, Store, StoreError};
use crate::template_registry::Registry;
use crate::time::Millis;

/// What a send needs from the server.
pub struct Submitter<'a> {
    pub store: &'a dyn Store,
    pub templates: &'a Registry,
    pub book: &'a PermissionBook,
    pub wakers: &'a super::Wakers,
}

/// One message to queue.
pub struct Submission<'a> {
    pub sender: &'a Sender,
    pub to: &'a PhoneE164,
    pub message: Outgoing,
    /// Sent instead of a free-form message when the window is closed.
    pub fallback: Option<Outgoing>,
    pub idempotency_key: Option<String>,
    /// Who asked, in the message's reason: "sent through the API", "sent by a flow".
    pub origin: &'static str,
    pub now: Millis,
}

/// A message queued (or found: its idempotency key was queued before).
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub id: String,
    pub kind: String,
    pub reason: String,
    pub duplicate: bool,
}

/// Why nothing was queued.
#[derive(Debug, thiserror::Error)]
pub enum NotQueued {
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Business calling is not available for this number's country.
    #[error("{0}")]
    CallingUnavailable(String),
    /// Meta's limits on permission requests (`code`: `permanent_permission_exists` or
    /// `call_permission_request_limit`).
    #[error("{message}")]
    PermissionLimit { code: &'static str, message: String },
    /// The sending number is offline and `outbox.when_sender_offline = "refuse"`.
    #[error("{0}")]
    SenderOffline(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Submitter<'_> {
    /// A message a person sends (through the API or the console): refused while the number
    /// is offline when the configuration says so, then queued like any other; once queued,
    /// an assistant answering the number stops for this customer's conversation (see
    /// `crate::assistants::auto_reply`), because a person took over.
    pub async fn submit_as_person(
        &self,
        settings: &crate::config::Settings,
        sender_status: &crate::sender_status::SenderStatus,
        s: Submission<'_>,
        who: &str,
    ) -> Result<Queued, NotQueued> {
        let (sender, to) = (s.sender, s.to);
        let status = sender_status.get(&sender.phone_number_id);
        if !status.online && settings.outbox.when_sender_offline == "refuse" {
            return Err(NotQueued::SenderOffline(format!(
                "number {} is offline: {}; nothing was queued (with outbox.when_sender_offline = \"queue\" it would wait for the number)",
                sender.phone_number_id,
                status.reason.as_deref().unwrap_or("unknown")
            )));
        }
        let queued = self.submit(s).await?;
        let answered_by_assistant = settings
            .assistants
            .iter()
            .any(|a| a.auto_reply.contains(&sender.phone_number_id));
        if !queued.duplicate && answered_by_assistant {
            // The message is queued: a failure here must not fail the send (a retry would
            // send it again); it is logged and counted instead.
            if let Err(e) = crate::assistants::auto_reply::hand_to_person(
                self.store,
                &sender.phone_number_id,
                to.digits(),
                &format!("{who} replied"),
            )
            .await
            {
                tracing::warn!(error.message = %e, "Pausing the number's assistant for this customer failed; it may answer their next message.");
                metrics::counter!("ringback_assistant_pause_failures_total").increment(1);
            }
        }
        Ok(queued)
    }

    pub async fn submit(&self, s: Submission<'_>) -> Result<Queued, NotQueued> {
        let ready = self.prepare(s).await?;
        self.queue(ready).await
    }

    /// The checks of the send policy, and the message row they approve, not yet written.
    pub async fn prepare(&self, s: Submission<'_>) -> Result<Ready, NotQueued> {
        let (sender, to) = (s.sender, s.to);
        let id = super::new_message_id();
        let facts = self
            .store
            .policy_facts(&sender.phone_number_id, to.digits())
            .await?;
        let approved = policy::check(
            &facts,
            self.templates,
            sender,
            to,
            s.message,
            s.fallback,
            &id,
            s.now,
        )?;
        // A call-permission request counts against Meta's limits (1 a day, 2 a week): refused
        // when it is queued if Meta would refuse it, recorded once it is queued.
        let permission_request = approved
            .body
            .pointer("/interactive/type")
            .and_then(Value::as_str)
            == Some("call_permission_request");
        let message = NewMessage {
            id,
            sender_id: sender.phone_number_id.clone(),
            to: to.to_string(),
            kind: approved.kind,
            body: approved.body,
            idempotency_key: s.idempotency_key,
            // The policy words its reasons for API sends.
            reason: approved
                .reason
                .replacen("sent through the API", s.origin, 1),
            created_at: s.now,
        };
        Ok(Ready {
            message,
            to: to.clone(),
            display_number: sender.display_number.clone(),
            permission_request,
            opens_free_entry_point: approved.opens_free_entry_point,
        })
    }

    /// Writes a prepared message, with the bookkeeping it needs, and wakes its lane.
    pub async fn queue(&self, ready: Ready) -> Result<Queued, NotQueued> {
        let Ready {
            message,
            to,
            display_number,
            permission_request,
            opens_free_entry_point,
        } = ready;
        let (sender_id, digits) = (message.sender_id.clone(), to.digits());
        let mut guard = None;
        if permission_request {
            crate::calling::region::business_calls_available(&display_number)
                .map_err(NotQueued::CallingUnavailable)?;
            // Held until the request is recorded, so two concurrent requests cannot both
            // pass a 1-per-24-h limit.
            guard = Some(self.book.lock().await);
            let record = self.book.get(&sender_id, digits).await?;
            if let Err(r) = record.may_request(message.created_at, &self.book.limits) {
                let code = if r.code == 138017 {
                    "permanent_permission_exists"
                } else {
                    "call_permission_request_limit"
                };
                return Err(NotQueued::PermissionLimit {
                    code,
                    message: r.message,
                });
            }
        }
        let (id, duplicate) = match self.store.enqueue(&message).await? {
            Enqueued::New(id) => (id, false),
            Enqueued::Existing(id) => (id, true),
        };
        if permission_request && !duplicate {
            self.book
                .apply_locked(
                    &sender_id,
                    digits,
                    crate::calling::permission::Input::RequestSent { origin: id.clone() },
                    message.created_at,
                )
                .await?;
        }
        drop(guard);
        if let (Some(until), false) = (opens_free_entry_point, duplicate) {
            self.store
                .open_free_entry_point(&sender_id, digits, until)
                .await?;
        }
        self.wakers.wake(&sender_id);
        Ok(Queued {
            id,
            kind: message.kind,
            reason: message.reason,
            duplicate,
        })
    }
}

/// A message the send policy approved, to be written by [`Submitter::queue`] — or, when
/// [`Ready::is_plain`], in a transaction of the caller's (a flow's run saves its send with
/// the step's outcome).
#[derive(Debug, Clone)]
pub struct Ready {
    pub message: NewMessage,
    to: PhoneE164,
    display_number: PhoneE164,
    permission_request: bool,
    opens_free_entry_point: Option<Millis>,
}

impl Ready {
    /// Whether writing the row is all there is to queueing it: no call-permission limits to
    /// hold and record, no free entry point to open.
    pub fn is_plain(&self) -> bool {
        !self.permission_request && self.opens_free_entry_point.is_none()
    }
}
