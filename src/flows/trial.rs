//! A trial run (`ringback flows test`): one run of a flow against a sandbox started for it,
//! on a simulated clock — delays and waits pass at once — with every step reported.
//!
//! Sends go through the send policy exactly as API sends do (the window, consent, the Cloud
//! API rule book) and then to the sandbox with the Cloud API client; HTTP steps make their
//! requests unless a canned answer is given for the step; the customer's replies are the ones
//! given on the command line, delivered through the sandbox as a user's message.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::engine::{Action, Engine, Failure, Next, Run};
use super::send;
use crate::cloud_api::{Client, Outcome};
use crate::config::Sender;
use crate::policy;
use crate::sandbox::Sandbox;
use crate::store::PolicyFacts;
use crate::template_registry::Registry;
use crate::time::Millis;

/// What a trial needs besides the flow.
pub struct Trial<'a> {
    pub engine: Engine<'a>,
    pub sender: &'a Sender,
    pub registry: Registry,
    pub client: Client,
    pub sandbox: Sandbox,
    /// Canned outputs by step id (HTTP answers, an assistant's reply …).
    pub canned: HashMap<String, Value>,
    /// The customer's replies, in order, for `wait_for_reply` steps; none left = a timeout.
    pub replies: Vec<String>,
    /// The customer wrote just before the trigger (the customer service window is open).
    pub window_open: bool,
    pub http_timeout: Duration,
    /// The configured assistants, remembering into a throw-away store.
    pub assistants: crate::assistants::Assistants,
}

/// One line of the trial's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Simulated time since the start.
    pub after: Millis,
    pub step: String,
    pub kind: String,
    pub input: Option<Value>,
    pub outcome: String,
}

/// What the trial ended with.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub lines: Vec<Line>,
    pub end: Next,
    pub sent: usize,
    pub simulated: Millis,
}

impl Trial<'_> {
    /// Runs the flow from `trigger` for `contact` (`{"phone": "+…", "name": …}`) starting at
    /// `start`; `report` sees each line as it happens.
    pub async fn run(
        &mut self,
        trigger: Value,
        contact: Value,
        start: Millis,
        mut report: impl FnMut(&Line),
    ) -> Report {
        let mut run = Run::start(trigger, contact.clone(), start);
        let phone = contact["phone"].as_str().map(str::to_string);
        let mut now = start;
        let mut last_inbound = self.window_open.then_some(start);
        if self.window_open
            && let Some(p) = &phone
        {
            self.customer_writes(p, "(wrote before the flow started)");
        }
        let (mut lines, mut sent) = (Vec::new(), 0);
        let mut replies = self.replies.clone().into_iter();
        let mut line = |lines: &mut Vec<Line>,
                        now: Millis,
                        step: &str,
                        kind: &str,
                        input: Option<Value>,
                        outcome: String| {
            let l = Line {
                after: now - start,
                step: step.to_string(),
                kind: kind.to_string(),
                input,
                outcome,
            };
            report(&l);
            lines.push(l);
        };
        let mut next = self.engine.advance(&mut run, now);
        let end = loop {
            next = match next {
                Next::Act(action) => {
                    let outcome = self.act(&action, phone.as_deref(), last_inbound, now).await;
                    let said = match &outcome {
                        Ok(out) => {
                            if out["status"] == "sent" {
                                sent += 1;
                            }
                            format!("→ {out}")
                        }
                        Err(f) => format!(
                            "✗ {}: {}{}",
                            f.code,
                            f.message,
                            if f.retryable { " (retryable)" } else { "" }
                        ),
                    };
                    line(
                        &mut lines,
                        now,
                        &action.step,
                        action.kind,
                        Some(action.input.clone()),
                        said,
                    );
                    self.engine.complete(&mut run, outcome, now)
                }
                Next::Sleep { until } => {
                    let step = self.current(&run);
                    let retry = matches!(
                        run.status,
                        super::engine::Status::Sleeping { retry: true, .. }
                    );
                    line(
                        &mut lines,
                        now,
                        &step,
                        if retry { "retry" } else { "delay" },
                        None,
                        format!(
                            "sleeps until {} (+{})",
                            crate::time::display(until),
                            span(until - now)
                        ),
                    );
                    now = until;
                    self.engine.resume(&mut run, now)
                }
                Next::AwaitReply { until } => {
                    let step = self.current(&run);
                    match (replies.next(), &phone) {
                        (Some(text), Some(p)) => {
                            // The reply comes a minute later on the simulated clock, or
                            // halfway to a shorter timeout.
                            now += 60_000.min((until - now) / 2);
                            let wamid = self.customer_writes(p, &text);
                            last_inbound = Some(now);
                            line(
                                &mut lines,
                                now,
                                &step,
                                "wait_for_reply",
                                None,
                                format!("← the customer replies {text:?}"),
                            );
                            self.engine.reply(
                                &mut run,
                                json!({"text": text, "type": "text", "wamid": wamid}),
                                now,
                            )
                        }
                        (reply, _) => {
                            let why = if reply.is_some() {
                                "the run has no customer phone to reply from (give --contact)"
                            } else {
                                "no reply"
                            };
                            line(
                                &mut lines,
                                now,
                                &step,
                                "wait_for_reply",
                                None,
                                format!("{why}: times out at +{}", span(until - start)),
                            );
                            now = until;
                            self.engine.resume(&mut run, now)
                        }
                    }
                }
                end @ (Next::Done | Next::Failed { .. }) => break end,
            };
        };
        Report {
            lines,
            end,
            sent,
            simulated: now - start,
        }
    }

    /// The id of the step a run is at (a waiting one's, for the report).
    fn current(&self, run: &Run) -> String {
        self.engine
            .current(run)
            .map(|s| s.id.clone())
            .unwrap_or_default()
    }

    /// The customer writes to the business number (through the sandbox, as a user would).
    fn customer_writes(&self, phone: &str, text: &str) -> String {
        let number = self.sandbox.number(&self.sender.phone_number_id).cloned();
        match number {
            Some(n) => crate::sandbox::users::deliver_message(
                &self.sandbox,
                &n,
                phone.trim_start_matches('+'),
                None,
                "text",
                json!({"text": {"body": text}}),
                None,
            ),
            None => String::new(),
        }
    }

    async fn act(
        &self,
        action: &Action,
        phone: Option<&str>,
        last_inbound: Option<Millis>,
        now: Millis,
    ) -> Result<Value, Failure> {
        if let Some(canned) = self.canned.get(&action.step) {
            return Ok(canned.clone());
        }
        let fail = |code: &str, message: String, retryable: bool| Failure {
            code: code.into(),
            message,
            retryable,
        };
        if send::is_send(action.kind) {
            let s = send::from_action(action.kind, &action.input, phone)
                .map_err(|e| fail(e.code, e.message, false))?;
            let facts = PolicyFacts {
                last_inbound,
                ..PolicyFacts::default()
            };
            let id = crate::outbox::new_message_id();
            let approved = policy::check(
                &facts,
                &self.registry,
                self.sender,
                &s.to,
                s.message,
                s.fallback,
                &id,
                now,
            )
            .map_err(|r| fail(r.code(), r.to_string(), false))?;
            return match self
                .client
                .send_message(
                    &self.sender.phone_number_id,
                    &self.sender.access_token,
                    &approved.body.to_string(),
                )
                .await
            {
                Outcome::Sent { wamid } => Ok(json!({
                    "status": "sent", "message_id": id, "wamid": wamid, "to": s.to.as_str(),
                    "type": approved.kind,
                    // The policy words its reasons for API sends.
                    "reason": approved.reason.replacen("sent through the API", "sent by a flow", 1),
                })),
                Outcome::Retry { code, reason, .. } => Err(fail(meta_code(code), reason, true)),
                Outcome::Fail { code, reason } => Err(fail(meta_code(code), reason, false)),
                Outcome::Unknown { reason } => Err(fail("send_unknown", reason, false)),
            };
        }
        match action.kind {
            // No address check: a trial calls what its author points it at.
            "http" => {
                super::actions::http_request(
                    &reqwest::Client::new(),
                    &action.input,
                    self.http_timeout,
                    None,
                )
                .await
            }
            "generate_reply" => {
                super::actions::generate_reply(&self.assistants, &action.input).await
            }
            "hand_off" => Ok(json!({"handed_off": true, "note": action.input["note"]})),
            other => Err(fail(
                "unsupported",
                format!("a {other} step cannot run in a trial"),
                false,
            )),
        }
    }
}

/// The code a flow branches on for a Cloud API error (as the policy names it).
fn meta_code(code: Option<i64>) -> &'static str {
    code.and_then(policy::meta_error_code)
        .unwrap_or("send_failed")
}

/// `1d 2h`, `5m`, `30s`: a simulated span.
pub fn span(ms: Millis) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}
