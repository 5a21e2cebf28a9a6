//! The flow file format (TOML), read into typed steps.
//!
//! ```toml
//! name = "post-call-follow-up"
//! [trigger]
//! on = "call.completed"
//! [[steps]]
//! id = "wait"
//! type = "delay"
//! for = "5m"
//! ```
//!
//! Each `[[steps]]` table is read in two passes: the keys every step has (`id`, `type`,
//! `next`, `on_error`, `retry`) first, then the rest into the struct of its type, which
//! refuses unknown keys — so a misspelt key is an error naming the step and the keys it takes,
//! not a silently ignored line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::{Spanned, Table, Value};

/// A flow as written in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub trigger: Trigger,
    pub steps: Vec<Step>,
    /// Line of the `[trigger]` table (1-based), for messages.
    pub trigger_line: usize,
}

/// What starts a run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// An event type (`call.missed`, `message.received` …), `http`, `schedule` or `manual`.
    pub on: String,
    /// Only events of this business number (display number or phone number id).
    pub number: Option<String>,
    /// `message.received`: the text is this word (case-insensitive, trimmed).
    pub keyword: Option<String>,
    /// `message.received`: the text matches this regular expression.
    pub regex: Option<String>,
    /// `message.received`: the id of the tapped button or list row.
    pub reply_id: Option<String>,
    /// `message.received`: only the message that starts a conversation.
    pub first_message: Option<bool>,
    /// `schedule`: a cron expression (5 or 6 fields) …
    pub cron: Option<String>,
    /// … read in this IANA time zone (`Europe/Berlin`).
    pub time_zone: Option<String>,
    /// `http`: the environment variable holding the secret callers sign or send with.
    pub secret_env: Option<String>,
}

/// One step, with the keys every step has.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    /// The step that follows (default: the next in the file; `end` ends the run).
    pub next: Option<String>,
    /// Where a failed step goes once its retries are spent (default: the run fails).
    pub on_error: Option<String>,
    pub retry: Option<Retry>,
    pub kind: StepKind,
    /// 1-based line of the step's table.
    pub line: usize,
}

/// How a failing step is tried again.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub attempts: u32,
    /// Between attempts, e.g. `1m`.
    pub wait: String,
}

/// A template to send, with its variables.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub template: String,
    #[serde(default = "default_language")]
    pub language: String,
    /// Positional (`["{{ trigger.name }}", "Acme"]`) or named (`{ first_name = "…" }`).
    #[serde(default)]
    pub variables: Variables,
}

fn default_language() -> String {
    "en_US".into()
}

/// A template's variable mapping.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Variables {
    Positional(Vec<String>),
    Named(BTreeMap<String, String>),
}

impl Default for Variables {
    fn default() -> Self {
        Variables::Positional(Vec::new())
    }
}

/// A reply button of an interactive message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Button {
    pub id: String,
    pub title: String,
}

/// One case of a branch: the first whose condition holds is taken.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(rename = "if")]
    pub condition: String,
    pub goto: String,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    SendTemplate {
        /// The recipient (default `{{ contact.phone }}`).
        to: Option<String>,
        template: TemplateRef,
    },
    SendText {
        to: Option<String>,
        text: String,
        /// Sent instead when the customer service window is closed.
        fallback: Option<TemplateRef>,
    },
    SendInteractive {
        to: Option<String>,
        body: String,
        buttons: Vec<Button>,
        fallback: Option<TemplateRef>,
    },
    SendMedia {
        to: Option<String>,
        media: String,
        url: String,
        caption: Option<String>,
        fallback: Option<TemplateRef>,
    },
    GenerateReply {
        assistant: Option<String>,
        customer: String,
        message: String,
    },
    Delay {
        /// A duration (`5m`, `2h 30m`, `3 days`) …
        duration: Option<String>,
        /// … or a moment (`{{ steps.fetch.body.date }}`, RFC 3339).
        until: Option<String>,
        /// `contact`, `business` or an IANA zone: how days and times are read.
        time_zone: Option<String>,
    },
    WaitForReply {
        timeout: String,
        on_timeout: String,
    },
    /// The first case whose condition holds; else `otherwise`, else the next step.
    Branch {
        cases: Vec<Case>,
        otherwise: Option<String>,
    },
    /// The case named by the value; else `default`, else the next step.
    Switch {
        value: String,
        cases: BTreeMap<String, String>,
        default: Option<String>,
    },
    Http {
        method: String,
        url: String,
        headers: BTreeMap<String, String>,
        body: Option<Value>,
        timeout: Option<String>,
    },
    Set {
        vars: BTreeMap<String, String>,
    },
    ForEach {
        over: String,
        var: String,
        max: u32,
        steps: Vec<Step>,
    },
    RequestCallPermission {
        to: Option<String>,
    },
    HandOff {
        note: Option<String>,
    },
    End,
}

/// The step types, as written in `type = "…"`.
pub const STEP_TYPES: &[&str] = &[
    "send_template",
    "send_text",
    "send_interactive",
    "send_media",
    "generate_reply",
    "delay",
    "wait_for_reply",
    "branch",
    "switch",
    "http",
    "set",
    "for_each",
    "request_call_permission",
    "hand_off",
    "end",
];

/// The most items a `for_each` may go over.
pub const MAX_LOOP_ITEMS: u32 = 10_000;

impl StepKind {
    /// The `type` as written.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::SendTemplate { .. } => "send_template",
            StepKind::SendText { .. } => "send_text",
            StepKind::SendInteractive { .. } => "send_interactive",
            StepKind::SendMedia { .. } => "send_media",
            StepKind::GenerateReply { .. } => "generate_reply",
            StepKind::Delay { .. } => "delay",
            StepKind::WaitForReply { .. } => "wait_for_reply",
            StepKind::Branch { .. } => "branch",
            StepKind::Switch { .. } => "switch",
            StepKind::Http { .. } => "http",
            StepKind::Set { .. } => "set",
            StepKind::ForEach { .. } => "for_each",
            StepKind::RequestCallPermission { .. } => "request_call_permission",
            StepKind::HandOff { .. } => "hand_off",
            StepKind::End => "end",
        }
    }

    /// Whether a run stops here for a while (a loop through it is not a busy loop).
    pub fn waits(&self) -> bool {
        matches!(self, StepKind::Delay { .. } | StepKind::WaitForReply { .. })
    }
}

/// A problem found while reading a file: the line (1-based, when known) and what to change.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadError {
    pub line: Option<usize>,
    pub step: Option<String>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
    trigger: Spanned<Trigger>,
    steps: Vec<Spanned<Table>>,
}

fn yes() -> bool {
    true
}

/// Reads a flow from its file's text; `default_name` (the file's stem) names it when the file
/// does not.
pub fn parse(text: &str, default_name: &str) -> Result<Flow, ReadError> {
    let doc: FileDoc = toml::from_str(text).map_err(|e| ReadError {
        line: e.span().map(|s| line_of(text, s.start)),
        step: None,
        message: e.message().trim().to_string(),
    })?;
    let steps = doc
        .steps
        .into_iter()
        .map(|s| {
            let line = line_of(text, s.span().start);
            read_step(text, s.into_inner(), line)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Flow {
        name: doc.name.unwrap_or_else(|| default_name.to_string()),
        description: doc.description,
        enabled: doc.enabled,
        trigger_line: line_of(text, doc.trigger.span().start),
        trigger: doc.trigger.into_inner(),
        steps,
    })
}

/// The 1-based line of byte `offset`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn read_step(text: &str, mut table: Table, line: usize) -> Result<Step, ReadError> {
    let err = |step: Option<&str>, message: String| ReadError {
        line: Some(line),
        step: step.map(str::to_string),
        message,
    };
    let id = match table.remove("id") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(err(None, "`id` must be a string".into())),
        None => {
            return Err(err(
                None,
                "a step needs an `id` (letters, digits and `_`), e.g. id = \"send_reminder\""
                    .into(),
            ));
        }
    };
    let kind = match table.remove("type") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(err(
                Some(&id),
                format!("a step needs a `type`, one of: {}", STEP_TYPES.join(", ")),
            ));
        }
    };
    let string = |table: &mut Table, key: &str| -> Result<Option<String>, ReadError> {
        match table.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(err(Some(&id), format!("`{key}` must be a string"))),
        }
    };
    let next = string(&mut table, "next")?;
    let on_error = string(&mut table, "on_error")?;
    let retry = match table.remove("retry") {
        None => None,
        Some(v) => Some(
            v.try_into::<Retry>()
                .map_err(|e| err(Some(&id), format!("`retry`: {}", e.message().trim())))?,
        ),
    };
    let kind = read_kind(text, &id, &kind, table, line)?;
    Ok(Step {
        id,
        next,
        on_error,
        retry,
        kind,
        line,
    })
}

/// The type-specific keys of each step type (what is left of the table after the common ones).
mod body {
    use super::*;

    macro_rules! bodies {
        ($($name:ident { $($field:ident : $ty:ty $(= $default:literal)?),* $(,)? })*) => {$(
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $name { $( $(#[serde(default, rename = $default)])? pub $field: $ty ),* }
        )*};
    }

    bodies! {
        SendTemplate { to: Option<String>, template: String, language: Option<String>, variables: Option<Variables> }
        SendText { to: Option<String>, text: String, fallback: Option<TemplateRef> }
        SendInteractive { to: Option<String>, body: String, buttons: Vec<Button>, fallback: Option<TemplateRef> }
        SendMedia { to: Option<String>, media: String, url: String, caption: Option<String>, fallback: Option<TemplateRef> }
        GenerateReply { assistant: Option<String>, customer: String, message: String }
        Delay { duration: Option<String> = "for", until: Option<String>, time_zone: Option<String> }
        WaitForReply { timeout: String, on_timeout: String }
        Branch { cases: Vec<Case>, otherwise: Option<String> = "else" }
        Switch { value: String, cases: BTreeMap<String, String>, default: Option<String> }
        Http { method: Option<String>, url: String, headers: Option<BTreeMap<String, String>>, body: Option<Value>, timeout: Option<String> }
        Set { vars: BTreeMap<String, String> }
        ForEach { over: String, var: Option<String> = "as", max: Option<u32> }
        Recipient { to: Option<String> }
        HandOff { note: Option<String> }
        Nothing {}
    }
}

fn read_kind(
    text: &str,
    id: &str,
    kind: &str,
    mut table: Table,
    line: usize,
) -> Result<StepKind, ReadError> {
    fn body<T: serde::de::DeserializeOwned>(
        table: Table,
        id: &str,
        kind: &str,
        line: usize,
    ) -> Result<T, ReadError> {
        Value::Table(table).try_into::<T>().map_err(|e| ReadError {
            line: Some(line),
            step: Some(id.to_string()),
            message: format!("({kind}) {}", e.message().trim()),
        })
    }
    let nested = match (kind, table.remove("do")) {
        ("for_each", Some(Value::Array(items))) => Some(items),
        ("for_each", Some(_)) => {
            return Err(ReadError {
                line: Some(line),
                step: Some(id.into()),
                message: "`do` must be a list of steps: [[steps.do]] tables under the for_each"
                    .into(),
            });
        }
        (_, Some(_)) => {
            return Err(ReadError {
                line: Some(line),
                step: Some(id.into()),
                message: format!("({kind}) only a for_each step has `do`"),
            });
        }
        (_, None) => None,
    };
    Ok(match kind {
        "send_template" => {
            let b: body::SendTemplate = body(table, id, kind, line)?;
            StepKind::SendTemplate {
                to: b.to,
                template: TemplateRef {
                    template: b.template,
                    language: b.language.unwrap_or_else(default_language),
                    variables: b.variables.unwrap_or_default(),
                },
            }
        }
        "send_text" => {
            let b: body::SendText = body(table, id, kind, line)?;
            StepKind::SendText {
                to: b.to,
                text: b.text,
                fallback: b.fallback,
            }
        }
        "send_interactive" => {
            let b: body::SendInteractive = body(table, id, kind, line)?;
            StepKind::SendInteractive {
                to: b.to,
                body: b.body,
                buttons: b.buttons,
                fallback: b.fallback,
            }
        }
        "send_media" => {
            let b: body::SendMedia = body(table, id, kind, line)?;
            StepKind::SendMedia {
                to: b.to,
                media: b.media,
                url: b.url,
                caption: b.caption,
                fallback: b.fallback,
            }
        }
        "generate_reply" => {
            let b: body::GenerateReply = body(table, id, kind, line)?;
            StepKind::GenerateReply {
                assistant: b.assistant,
                customer: b.customer,
                message: b.message,
            }
        }
        "delay" => {
            let b: body::Delay = body(table, id, kind, line)?;
            StepKind::Delay {
                duration: b.duration,
                until: b.until,
                time_zone: b.time_zone,
            }
        }
        "wait_for_reply" => {
            let b: body::WaitForReply = body(table, id, kind, line)?;
            StepKind::WaitForReply {
                timeout: b.timeout,
                on_timeout: b.on_timeout,
            }
        }
        "branch" => {
            let b: body::Branch = body(table, id, kind, line)?;
            StepKind::Branch {
                cases: b.cases,
                otherwise: b.otherwise,
            }
        }
        "switch" => {
            let b: body::Switch = body(table, id, kind, line)?;
            StepKind::Switch {
                value: b.value,
                cases: b.cases,
                default: b.default,
            }
        }
        "http" => {
            let b: body::Http = body(table, id, kind, line)?;
            StepKind::Http {
                method: b
                    .method
                    .unwrap_or_else(|| "GET".into())
                    .to_ascii_uppercase(),
                url: b.url,
                headers: b.headers.unwrap_or_default(),
                body: b.body,
                timeout: b.timeout,
            }
        }
        "set" => {
            let b: body::Set = body(table, id, kind, line)?;
            StepKind::Set { vars: b.vars }
        }
        "for_each" => {
            let b: body::ForEach = body(table, id, kind, line)?;
            let mut steps = Vec::new();
            for item in nested.unwrap_or_default() {
                let Value::Table(t) = item else {
                    return Err(ReadError {
                        line: Some(line),
                        step: Some(id.into()),
                        message: "each entry of `do` must be a step table".into(),
                    });
                };
                // Nested tables carry no span of their own: their line is found by their id.
                let line = t
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|nested| find_id_line(text, nested, line))
                    .unwrap_or(line);
                steps.push(read_step(text, t, line)?);
            }
            StepKind::ForEach {
                over: b.over,
                var: b.var.unwrap_or_else(|| "item".into()),
                max: b.max.unwrap_or(1_000),
                steps,
            }
        }
        "request_call_permission" => {
            let b: body::Recipient = body(table, id, kind, line)?;
            StepKind::RequestCallPermission { to: b.to }
        }
        "hand_off" => {
            let b: body::HandOff = body(table, id, kind, line)?;
            StepKind::HandOff { note: b.note }
        }
        "end" => {
            let _: body::Nothing = body(table, id, kind, line)?;
            StepKind::End
        }
        other => {
            return Err(ReadError {
                line: Some(line),
                step: Some(id.into()),
                message: format!(
                    "unknown step type '{other}'; the types are: {}",
                    STEP_TYPES.join(", ")
                ),
            });
        }
    })
}

/// The line of the `[[…]]` header of the table holding `id = "<id>"`, at or after line `from`
/// (as a top-level step's line is its `[[steps]]` header).
fn find_id_line(text: &str, id: &str, from: usize) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let at = (from.saturating_sub(1)..lines.len()).find(|&i| {
        let l = lines[i].trim();
        l.starts_with("id") && l.contains(&format!("\"{id}\""))
    })?;
    let header = (0..=at)
        .rev()
        .find(|&i| lines[i].trim_start().starts_with("[["))
        .unwrap_or(at);
    Some(header + 1)
}
