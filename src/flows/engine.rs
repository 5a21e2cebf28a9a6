//! The interpreter: moves a run through its flow, one decision at a time.
//!
//! It does no I/O and reads no clock. The runner gives it `now`, performs the actions it asks
//! for (a send, an HTTP request, an AI reply …) and hands back their outcomes; the [`Run`] it
//! updates is plain data, so the runner can store it after every step and a run waiting three
//! days is a row with a due time, not a sleeping task. Steps that only decide (branch, switch,
//! set, for_each, end) are taken in one go until the run must act or wait.
//!
//! Each action carries a key — its number in the run, the step's place (its id, with the item
//! of every enclosing loop: `each[3].remind`) and the attempt, `4:each[3].remind#1` — kept in
//! the run until its outcome is recorded: the runner derives the send's idempotency key from
//! it, so a crash between "asked" and "recorded" asks again with the same key and never sends
//! twice.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::definition::{Flow, Step, StepKind, TemplateRef, Variables};
use super::render::{self, Context};
use crate::time::Millis;

/// Most steps taken without acting or waiting in one go: enough for a 10,000-item for_each
/// whose body only decides; the check refuses loops without a wait, so only a `delay` whose
/// `until` is already past, in a loop, reaches it.
const MAX_STEPS_AT_ONCE: usize = 1_000_000;
/// Attempts of a failing action when its step says nothing (seed 001: wait a minute, retry
/// once, then record the error).
const DEFAULT_ATTEMPTS: u32 = 2;
const DEFAULT_RETRY_WAIT_MS: Millis = 60_000;

/// A run's state: everything needed to go on after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub trigger: Value,
    pub contact: Value,
    pub vars: Map<String, Value>,
    /// Each step's output by id (inside a loop: the current item's).
    pub steps: Map<String, Value>,
    /// Where the run is: the flow's steps, then one frame per enclosing for_each.
    pub frames: Vec<Frame>,
    /// Attempts made of the current step's action.
    pub attempt: u32,
    /// Actions asked for so far, retries apart: the first part of an action's key, so a run
    /// that comes back to a step (a paced loop, a re-ask) acts with a new key.
    #[serde(default)]
    pub actions: u64,
    /// The key of the action asked for and not completed yet: asked again after a restart
    /// (same key, so the runner's idempotency holds), and the only one `complete` accepts.
    #[serde(default)]
    pub acting: Option<String>,
    pub started_at: Millis,
    pub status: Status,
}

/// A position in one scope: the flow's steps, or a for_each's body for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub index: usize,
    /// The for_each's list and the item being run (empty for the flow's own scope).
    pub items: Vec<Value>,
    pub item: usize,
    pub var: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Running,
    /// A delay, or the wait before a retry.
    Sleeping {
        until: Millis,
        retry: bool,
    },
    /// A wait for the customer's reply, until a timeout.
    AwaitingReply {
        until: Millis,
    },
    Done,
    Failed {
        step: String,
        error: String,
    },
}

/// What the runner does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Perform the action, then [`Engine::complete`].
    Act(Action),
    /// Call [`Engine::resume`] at `until`.
    Sleep {
        until: Millis,
    },
    /// Call [`Engine::reply`] when the customer writes, [`Engine::resume`] at `until`.
    AwaitReply {
        until: Millis,
    },
    Done,
    Failed {
        step: String,
        error: String,
    },
}

/// An action for the runner, with its inputs rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub step: String,
    /// The step's type (`send_template`, `http` …).
    pub kind: &'static str,
    /// The action's number in the run, the step's place and the attempt: `4:each[3].remind#1`.
    pub key: String,
    pub input: Value,
}

/// How an action failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// A code a flow can branch on (`outside_window`, `opted_out`, `http_status` …).
    pub code: String,
    pub message: String,
    /// Whether trying again may succeed (a timeout, 429, 5xx), or not (a refusal).
    pub retryable: bool,
}

/// Runs steps of one flow; `base` holds `flow`, `run`, `env` for templates.
pub struct Engine<'a> {
    pub flow: &'a Flow,
    pub base: &'a Context,
    /// The business's time zone: delays count days in it unless they name another.
    pub zone: jiff::tz::TimeZone,
}

impl Run {
    pub fn start(trigger: Value, contact: Value, started_at: Millis) -> Run {
        Run {
            trigger,
            contact,
            vars: Map::new(),
            steps: Map::new(),
            frames: vec![Frame {
                index: 0,
                items: Vec::new(),
                item: 0,
                var: String::new(),
            }],
            attempt: 0,
            actions: 0,
            acting: None,
            started_at,
            status: Status::Running,
        }
    }
}

/// What taking one step led to.
enum Taken {
    Continue,
    Stop(Next),
}

impl Engine<'_> {
    /// Takes steps until the run must act, wait or has ended.
    pub fn advance(&self, run: &mut Run, now: Millis) -> Next {
        match &run.status {
            Status::Running => {}
            Status::Sleeping { until, .. } => return Next::Sleep { until: *until },
            Status::AwaitingReply { until } => return Next::AwaitReply { until: *until },
            Status::Done => return Next::Done,
            Status::Failed { step, error } => {
                return Next::Failed {
                    step: step.clone(),
                    error: error.clone(),
                };
            }
        }
        for _ in 0..MAX_STEPS_AT_ONCE {
            let Some(step) = self.current(run) else {
                self.leave_scope(run);
                if run.status == Status::Done {
                    return Next::Done;
                }
                continue;
            };
            if let Taken::Stop(next) = self.take(run, step, now) {
                return next;
            }
        }
        let step = self.current(run).map(|s| s.id.clone()).unwrap_or_default();
        self.fail(
            run,
            step,
            format!(
                "more than {MAX_STEPS_AT_ONCE} steps without acting or waiting (a loop whose \
                 delay has an `until` already past?)"
            ),
        )
    }

    /// Records the outcome of the action [`Next::Act`] asked for, then goes on. Without an
    /// action outstanding (a duplicate completion) it changes nothing.
    pub fn complete(&self, run: &mut Run, outcome: Result<Value, Failure>, now: Millis) -> Next {
        let (Some(_), Some(step)) = (run.acting.take(), self.current(run)) else {
            return self.advance(run, now);
        };
        match outcome {
            Ok(output) => {
                run.steps.insert(step.id.clone(), output);
                run.attempt = 0;
                self.forward(run, step);
            }
            Err(f) => {
                if let Taken::Stop(next) = self.failed(run, step, f, now) {
                    return next;
                }
            }
        }
        self.advance(run, now)
    }

    /// Wakes a sleeping run (its delay or retry wait is over) or a run whose wait for a reply
    /// timed out; a run in any other state is left as it is.
    pub fn resume(&self, run: &mut Run, now: Millis) -> Next {
        let Some(step) = self.current(run) else {
            return self.advance(run, now);
        };
        if run.acting.is_some() {
            return self.advance(run, now);
        }
        match run.status.clone() {
            Status::Sleeping { until, retry } if now >= until => {
                run.status = Status::Running;
                if !retry {
                    run.steps.insert(
                        step.id.clone(),
                        json!({ "until": crate::time::display(until) }),
                    );
                    self.forward(run, step);
                }
            }
            Status::AwaitingReply { until } if now >= until => {
                run.status = Status::Running;
                run.steps
                    .insert(step.id.clone(), json!({ "timed_out": true }));
                if let StepKind::WaitForReply { on_timeout, .. } = &step.kind {
                    self.goto(run, on_timeout);
                }
            }
            _ => {}
        }
        self.advance(run, now)
    }

    /// The customer's reply reached a run waiting for one: `message` is what `steps.<id>`
    /// holds (text, type, the tapped button's id …).
    pub fn reply(&self, run: &mut Run, message: Value, now: Millis) -> Next {
        if let (Status::AwaitingReply { .. }, Some(step), None) =
            (&run.status, self.current(run), &run.acting)
        {
            let mut output = match message {
                Value::Object(m) => m,
                other => Map::from_iter([("text".to_string(), other)]),
            };
            output.insert("timed_out".into(), Value::Bool(false));
            run.steps.insert(step.id.clone(), Value::Object(output));
            run.status = Status::Running;
            self.forward(run, step);
        }
        self.advance(run, now)
    }

    /// The step the run is at, if its scope has one there.
    pub fn current(&self, run: &Run) -> Option<&Step> {
        let last = run.frames.last()?;
        self.scope(run, run.frames.len() - 1).get(last.index)
    }

    /// The steps of frame `depth`: the flow's, or the body of the for_each it runs.
    fn scope(&self, run: &Run, depth: usize) -> &[Step] {
        let mut scope: &[Step] = &self.flow.steps;
        for f in &run.frames[..depth.min(run.frames.len())] {
            match scope.get(f.index).map(|s| &s.kind) {
                Some(StepKind::ForEach { steps, .. }) => scope = steps,
                _ => return &[],
            }
        }
        scope
    }

    /// The end of a scope: the run ends, or its loop takes the next item, or leaves.
    fn leave_scope(&self, run: &mut Run) {
        if run.frames.len() <= 1 {
            run.status = Status::Done;
            return;
        }
        // The next item starts clean: no step of the body has run for it yet.
        let mut body = Vec::new();
        ids(self.scope(run, run.frames.len() - 1), &mut body);
        for id in body {
            run.steps.remove(&id);
        }
        let f = run.frames.last_mut().expect("more than one frame");
        f.item += 1;
        f.index = 0;
        if f.item >= f.items.len() {
            run.frames.pop();
            if let Some(step) = self.current(run) {
                self.forward(run, step);
            }
        }
    }

    /// Where the step's place in the run is, as keys and messages name it.
    fn place(&self, run: &Run, step: &Step) -> String {
        let mut out = String::new();
        // A loop's step is in one frame, the item it is at in the next.
        for (depth, pair) in run.frames.windows(2).enumerate() {
            if let Some(s) = self.scope(run, depth).get(pair[0].index) {
                out.push_str(&format!("{}[{}].", s.id, pair[1].item));
            }
        }
        out.push_str(&step.id);
        out
    }

    fn context(&self, run: &Run, now: Millis) -> Context {
        let mut ctx = self.base.clone();
        ctx.root
            .insert("now".into(), Value::String(crate::time::display(now)));
        let mut about = match ctx.root.remove("run") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        about.insert(
            "started_at".into(),
            Value::String(crate::time::display(run.started_at)),
        );
        ctx.root.insert("run".into(), Value::Object(about));
        for (k, v) in [
            ("trigger", run.trigger.clone()),
            ("contact", run.contact.clone()),
            ("vars", Value::Object(run.vars.clone())),
            ("steps", Value::Object(run.steps.clone())),
        ] {
            ctx.root.insert(k.into(), v);
        }
        for f in &run.frames[1..] {
            if let Some(item) = f.items.get(f.item) {
                ctx = ctx.with(&f.var, item.clone());
            }
        }
        ctx
    }

    /// Follows the step's `next`, or goes to the step after it.
    fn forward(&self, run: &mut Run, step: &Step) {
        match &step.next {
            Some(target) => self.goto(run, target),
            None => {
                if let Some(f) = run.frames.last_mut() {
                    f.index += 1;
                }
            }
        }
    }

    /// Goes to a step of the current scope (the check made sure it is one), or ends the run.
    fn goto(&self, run: &mut Run, target: &str) {
        if target == super::check::END {
            run.status = Status::Done;
            return;
        }
        let from = self.current(run).map(|s| s.id.clone()).unwrap_or_default();
        let scope = self.scope(run, run.frames.len() - 1);
        match scope.iter().position(|s| s.id == target) {
            Some(i) => {
                if let Some(f) = run.frames.last_mut() {
                    f.index = i;
                }
            }
            None => {
                run.status = Status::Failed {
                    step: from,
                    error: format!("goes to '{target}', which is no step of its scope"),
                }
            }
        }
    }

    fn fail(&self, run: &mut Run, step: String, error: String) -> Next {
        run.status = Status::Failed {
            step: step.clone(),
            error: error.clone(),
        };
        Next::Failed { step, error }
    }

    /// A failed step: retried after a wait while it may succeed and attempts are left, then
    /// its `on_error` step (with `steps.<id>.error` set), else the run fails.
    fn failed(&self, run: &mut Run, step: &Step, f: Failure, now: Millis) -> Taken {
        let (attempts, wait) = match &step.retry {
            Some(r) => (
                r.attempts,
                super::check::parse_duration(&r.wait)
                    .map(|s| s * 1000)
                    .unwrap_or(DEFAULT_RETRY_WAIT_MS),
            ),
            None => (DEFAULT_ATTEMPTS, DEFAULT_RETRY_WAIT_MS),
        };
        if f.retryable && run.attempt < attempts {
            run.status = Status::Sleeping {
                until: now + wait,
                retry: true,
            };
            return Taken::Stop(Next::Sleep { until: now + wait });
        }
        run.attempt = 0;
        match &step.on_error {
            Some(target) => {
                // The error as text (`opted_out: …`) and its code apart, so a flow can both log
                // it (`{{ steps.x.error }}`) and branch on it (`steps.x.error_code == …`).
                let output = json!({
                    "status": "failed",
                    "error": format!("{}: {}", f.code, f.message),
                    "error_code": f.code,
                });
                run.steps.insert(step.id.clone(), output);
                self.goto(run, target);
                Taken::Continue
            }
            None => {
                let place = self.place(run, step);
                Taken::Stop(self.fail(run, place, format!("{}: {}", f.code, f.message)))
            }
        }
    }

    /// Takes one step.
    fn take(&self, run: &mut Run, step: &Step, now: Millis) -> Taken {
        let ctx = self.context(run, now);
        let rendered = match self.decide(run, step, &ctx, now) {
            Ok(Some(taken)) => return taken,
            Ok(None) => None,
            Err(message) => Some(message),
        };
        if let Some(message) = rendered {
            let f = Failure {
                code: "invalid_input".into(),
                message,
                retryable: false,
            };
            return self.failed(run, step, f, now);
        }
        // An action: its inputs, rendered now.
        match action_input(step, &ctx) {
            Ok(input) => {
                let key = match &run.acting {
                    // Asked again (the runner restarted before recording it): the same key.
                    Some(key) => key.clone(),
                    None => {
                        if run.attempt == 0 {
                            run.actions += 1;
                        }
                        run.attempt += 1;
                        let key =
                            format!("{}:{}#{}", run.actions, self.place(run, step), run.attempt);
                        run.acting = Some(key.clone());
                        key
                    }
                };
                Taken::Stop(Next::Act(Action {
                    step: step.id.clone(),
                    kind: step.kind.name(),
                    key,
                    input,
                }))
            }
            Err(message) => self.failed(
                run,
                step,
                Failure {
                    code: "invalid_input".into(),
                    message,
                    retryable: false,
                },
                now,
            ),
        }
    }

    /// A step that only decides or waits: `Some` with what it led to; `None` for an action.
    fn decide(
        &self,
        run: &mut Run,
        step: &Step,
        ctx: &Context,
        now: Millis,
    ) -> Result<Option<Taken>, String> {
        match &step.kind {
            StepKind::Branch { cases, otherwise } => {
                for case in cases {
                    if render::condition(&case.condition, ctx)? {
                        run.steps
                            .insert(step.id.clone(), json!({ "taken": case.goto }));
                        self.goto(run, &case.goto);
                        return Ok(Some(Taken::Continue));
                    }
                }
                run.steps
                    .insert(step.id.clone(), json!({ "taken": otherwise }));
                match otherwise {
                    Some(t) => self.goto(run, t),
                    None => self.forward(run, step),
                }
            }
            StepKind::Switch {
                value,
                cases,
                default,
            } => {
                let key = match render::value(value, ctx)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                run.steps.insert(step.id.clone(), json!({ "value": key }));
                match cases.get(&key).or(default.as_ref()) {
                    Some(t) => self.goto(run, t),
                    None => self.forward(run, step),
                }
            }
            StepKind::Set { vars } => {
                let mut set = Map::new();
                for (name, source) in vars {
                    set.insert(name.clone(), Value::String(render::text(source, ctx)?));
                }
                run.vars.extend(set.clone());
                run.steps.insert(step.id.clone(), Value::Object(set));
                self.forward(run, step);
            }
            StepKind::ForEach { over, var, max, .. } => {
                let items = match render::value(over, ctx)? {
                    Value::Array(items) => items,
                    other => {
                        return Err(format!(
                            "`{over}` is not a list (it is {})",
                            json_kind(&other)
                        ));
                    }
                };
                if items.len() > *max as usize {
                    return Err(format!(
                        "`{over}` has {} items, more than this for_each's max of {max}",
                        items.len()
                    ));
                }
                run.steps
                    .insert(step.id.clone(), json!({ "count": items.len() }));
                if items.is_empty() {
                    self.forward(run, step);
                } else {
                    run.frames.push(Frame {
                        index: 0,
                        items,
                        item: 0,
                        var: var.clone(),
                    });
                }
            }
            StepKind::End => run.status = Status::Done,
            StepKind::Delay {
                duration,
                until,
                time_zone,
            } => {
                let zone = self.zone_for(run, time_zone.as_deref());
                let due = match (duration, until) {
                    (Some(d), _) => add_span(now, d, &zone)?,
                    (None, Some(u)) => moment(&render::text(u, ctx)?, &zone)?,
                    (None, None) => now,
                };
                if due <= now {
                    run.steps.insert(
                        step.id.clone(),
                        json!({ "until": crate::time::display(due) }),
                    );
                    self.forward(run, step);
                } else {
                    run.status = Status::Sleeping {
                        until: due,
                        retry: false,
                    };
                    return Ok(Some(Taken::Stop(Next::Sleep { until: due })));
                }
            }
            StepKind::WaitForReply { timeout, .. } => {
                let until = now + super::check::parse_duration(timeout)? * 1000;
                run.status = Status::AwaitingReply { until };
                return Ok(Some(Taken::Stop(Next::AwaitReply { until })));
            }
            _ => return Ok(None),
        }
        match &run.status {
            Status::Done => Ok(Some(Taken::Stop(Next::Done))),
            // A jump to no step of its scope (a flow that skipped the check).
            Status::Failed { step, error } => Ok(Some(Taken::Stop(Next::Failed {
                step: step.clone(),
                error: error.clone(),
            }))),
            _ => Ok(Some(Taken::Continue)),
        }
    }

    /// The zone a delay counts days in: its own, the contact's (when known), the business's.
    fn zone_for(&self, run: &Run, named: Option<&str>) -> jiff::tz::TimeZone {
        let contact = run.contact["time_zone"].as_str();
        match named {
            Some("contact") => contact
                .and_then(|z| jiff::tz::TimeZone::get(z).ok())
                .unwrap_or_else(|| self.zone.clone()),
            Some("business") | None => self.zone.clone(),
            Some(z) => jiff::tz::TimeZone::get(z).unwrap_or_else(|_| self.zone.clone()),
        }
    }
}

/// `now` plus a span written by a person (`3 days` is three calendar days in `zone`: across a
/// daylight-saving change it is 71 or 73 hours).
fn add_span(now: Millis, span: &str, zone: &jiff::tz::TimeZone) -> Result<Millis, String> {
    let span: jiff::Span = span
        .trim()
        .parse()
        .map_err(|e| format!("`{span}` is not a duration: {e}"))?;
    let start = jiff::Timestamp::from_millisecond(now)
        .map_err(|e| e.to_string())?
        .to_zoned(zone.clone());
    start
        .checked_add(span)
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| format!("cannot add {span}: {e}"))
}

/// A moment: RFC 3339 with an offset, or a date and time (`2026-12-24 09:00`) read in `zone`.
fn moment(text: &str, zone: &jiff::tz::TimeZone) -> Result<Millis, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(zone.clone()).ok())
        .map(|z| z.timestamp().as_millisecond())
        .ok_or_else(|| {
            format!("`{text}` is not a time: write RFC 3339 (2026-12-24T09:00:00+01:00) or 2026-12-24 09:00")
        })
}

/// The ids of `steps` and of every step nested in them.
fn ids(steps: &[Step], out: &mut Vec<String>) {
    for s in steps {
        out.push(s.id.clone());
        if let StepKind::ForEach { steps, .. } = &s.kind {
            ids(steps, out);
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// An action step's inputs, every template rendered.
fn action_input(step: &Step, ctx: &Context) -> Result<Value, String> {
    let t = |s: &str| render::text(s, ctx);
    let opt = |s: &Option<String>| s.as_deref().map(t).transpose();
    let template = |r: &TemplateRef| -> Result<Value, String> {
        let variables = match &r.variables {
            Variables::Positional(v) => Value::Array(
                v.iter()
                    .map(|s| t(s).map(Value::String))
                    .collect::<Result<_, _>>()?,
            ),
            Variables::Named(m) => Value::Object(
                m.iter()
                    .map(|(k, s)| t(s).map(|v| (k.clone(), Value::String(v))))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(json!({ "template": r.template, "language": r.language, "variables": variables }))
    };
    let fallback = |f: &Option<TemplateRef>| f.as_ref().map(template).transpose();
    Ok(match &step.kind {
        StepKind::SendTemplate { to, template: r } => {
            json!({ "to": opt(to)?, "template": template(r)? })
        }
        StepKind::SendText {
            to,
            text,
            fallback: f,
        } => {
            json!({ "to": opt(to)?, "text": t(text)?, "fallback": fallback(f)? })
        }
        StepKind::SendInteractive {
            to,
            body,
            buttons,
            fallback: f,
        } => {
            let buttons: Vec<Value> = buttons
                .iter()
                .map(|b| t(&b.title).map(|title| json!({ "id": b.id, "title": title })))
                .collect::<Result<_, _>>()?;
            json!({ "to": opt(to)?, "body": t(body)?, "buttons": buttons, "fallback": fallback(f)? })
        }
        StepKind::SendMedia {
            to,
            media,
            url,
            caption,
            fallback: f,
        } => json!({
            "to": opt(to)?, "media": media, "url": t(url)?, "caption": opt(caption)?,
            "fallback": fallback(f)?,
        }),
        StepKind::GenerateReply {
            assistant,
            customer,
            message,
        } => json!({ "assistant": assistant, "customer": t(customer)?, "message": t(message)? }),
        StepKind::Http {
            method,
            url,
            headers,
            body,
            timeout,
        } => {
            let headers: Map<String, Value> = headers
                .iter()
                .map(|(k, v)| t(v).map(|v| (k.clone(), Value::String(v))))
                .collect::<Result<_, _>>()?;
            let body = body.as_ref().map(|b| render_toml(b, ctx)).transpose()?;
            json!({ "method": method, "url": t(url)?, "headers": headers, "body": body, "timeout": timeout })
        }
        StepKind::RequestCallPermission { to } => json!({ "to": opt(to)? }),
        StepKind::HandOff { note } => json!({ "note": opt(note)? }),
        other => json!({ "type": other.name() }),
    })
}

/// A TOML value (an HTTP body) as JSON, its strings rendered.
fn render_toml(v: &toml::Value, ctx: &Context) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::String(render::text(s, ctx)?),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => json!(d.to_string()),
        toml::Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_toml(x, ctx))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, x)| render_toml(x, ctx).map(|x| (k.clone(), x)))
                .collect::<Result<_, _>>()?,
        ),
    })
}
