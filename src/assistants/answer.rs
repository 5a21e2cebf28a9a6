//! What a model's answer becomes: text for the customer, a hand-off, a callback request, or
//! variables recorded — nothing else. Tool calls are checked here: an unknown tool, a
//! variable the assistant does not declare, or arguments that are not the declared JSON are
//! ignored (and reported), so a customer who talks the model into "calling" something reaches
//! nothing.

use async_openai::types::chat::{ChatCompletionMessageToolCalls, ChatCompletionResponseMessage};
use serde_json::Value;

use super::prompt::{HAND_OFF, RECORD_VARIABLE, REQUEST_CALLBACK};
use crate::config::assistants::LongReplies;

/// What the answer asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Text for the customer.
    Text(String),
    /// A person should take over.
    HandOff { reason: String },
    /// The customer wants a phone call.
    Callback { when: String, note: Option<String> },
    /// No usable text: `code` is `model_refused` or `model_empty`.
    Nothing { code: &'static str, detail: String },
}

/// One answer, read.
#[derive(Debug, Default, PartialEq)]
pub struct Reading {
    /// `None`: only variables were recorded; ask again with the tool results.
    pub outcome: Option<Outcome>,
    /// (name, value) the model recorded, declared variables only.
    pub recorded: Vec<(String, String)>,
    /// (tool call id, result) to send back on a second round.
    pub results: Vec<(String, String)>,
    /// Calls that were ignored, and why.
    pub ignored: Vec<String>,
}

/// Reads `message` for an assistant declaring `variables`.
pub fn read(message: &ChatCompletionResponseMessage, variables: &[String]) -> Reading {
    let mut r = Reading::default();
    if let Some(refusal) = message.refusal.as_deref().filter(|s| !s.trim().is_empty()) {
        r.outcome = Some(Outcome::Nothing {
            code: "model_refused",
            detail: refusal.trim().to_string(),
        });
        return r;
    }
    let mut decided: Option<Outcome> = None;
    for call in message.tool_calls.iter().flatten() {
        let ChatCompletionMessageToolCalls::Function(call) = call else {
            r.ignored
                .push("a custom tool call (none is declared)".into());
            continue;
        };
        let args: Option<Value> = serde_json::from_str(&call.function.arguments).ok();
        let arg = |k: &str| {
            args.as_ref()
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        match call.function.name.as_str() {
            HAND_OFF => {
                decided = Some(Outcome::HandOff {
                    reason: arg("reason").unwrap_or_else(|| "the model asked for a person".into()),
                });
            }
            REQUEST_CALLBACK => {
                if !matches!(decided, Some(Outcome::HandOff { .. })) {
                    decided = Some(Outcome::Callback {
                        when: arg("when").unwrap_or_else(|| "as soon as possible".into()),
                        note: arg("note"),
                    });
                }
            }
            RECORD_VARIABLE => match (arg("name"), arg("value")) {
                (Some(name), Some(value)) if variables.contains(&name) => {
                    r.recorded.push((name, value));
                    r.results.push((call.id.clone(), "recorded".into()));
                }
                (name, _) => {
                    r.ignored.push(format!(
                        "record_variable {}: not a declared variable, or no value",
                        name.unwrap_or_default()
                    ));
                    r.results
                        .push((call.id.clone(), "not recorded: undeclared variable".into()));
                }
            },
            other => {
                r.ignored.push(format!("{other}: not a declared tool"));
                r.results.push((call.id.clone(), "unknown tool".into()));
            }
        }
    }
    let text = message
        .content
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    r.outcome = match decided {
        Some(o) => Some(o),
        None if !text.is_empty() => Some(Outcome::Text(text.to_string())),
        None if !r.results.is_empty() => None,
        None => Some(Outcome::Nothing {
            code: "model_empty",
            detail: "the model answered with no text".into(),
        }),
    };
    r
}

/// `text` as messages of at most `max` characters: whole when it fits; else cut on sentence
/// boundaries into several (`Split`) or the first only, ending in `…` (`Trim`).
pub fn fit(text: &str, max: usize, mode: LongReplies) -> Vec<String> {
    let text = text.trim();
    if text.chars().count() <= max {
        return vec![text.to_string()];
    }
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for piece in sentences(text).flat_map(|s| cut_words(s, max)) {
        let needed = current.chars().count() + piece.chars().count() + 1;
        if !current.is_empty() && needed > max {
            parts.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&piece);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    match mode {
        LongReplies::Split => parts,
        LongReplies::Trim => {
            let mut first = parts.into_iter().next().unwrap_or_default();
            if first.chars().count() >= max {
                first = first.chars().take(max - 1).collect();
            }
            first.push('…');
            vec![first]
        }
    }
}

/// Sentences: cut after `.`, `!`, `?` followed by white space, and at line breaks.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next_space = chars.get(i + 1).is_none_or(|&(_, n)| n.is_whitespace());
        if (matches!(c, '.' | '!' | '?') && next_space) || c == '\n' {
            let end = at + c.len_utf8();
            out.push(text[start..end].trim());
            start = end;
        }
    }
    out.push(text[start..].trim());
    out.into_iter().filter(|s| !s.is_empty())
}

/// A sentence longer than `max` cut between words (inside a word only when one word is longer).
fn cut_words(sentence: &str, max: usize) -> Vec<String> {
    if sentence.chars().count() <= max {
        return vec![sentence.to_string()];
    }
    let mut out = Vec::new();
    let mut current = String::new();
    for word in sentence.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > max {
            let head: String = word.chars().take(max).collect();
            word = word.chars().skip(max).collect();
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            out.push(head);
        }
        if !current.is_empty() && current.chars().count() + word.chars().count() + 1 > max {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
