//! `[[assistants]]`: business-specific AI assistants (see [`crate::assistants`]).
//!
//! Each entry is validated once, at start-up: knowledge files are read here (a missing or
//! oversized one stops the start with the file's name), the provider's key is read from the
//! environment variable the entry names (never from the file, never logged).

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// The largest knowledge file read: an assistant's knowledge is a business's FAQ and price
/// list, not a library; a bigger file is most likely the wrong file.
pub const MAX_KNOWLEDGE_BYTES: u64 = 2 * 1024 * 1024;

/// WhatsApp's limit on a text message's body.
pub const WHATSAPP_TEXT_LIMIT: usize = 4096;

/// One `[[assistants]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistantConfig {
    pub name: String,
    /// What the assistant is for and how it speaks (the system prompt's first part).
    #[serde(default)]
    pub instructions: String,
    /// Markdown or text files: opening hours, prices, FAQ. Relative paths are read from the
    /// working directory.
    #[serde(default)]
    pub knowledge: Vec<String>,
    /// Variables a request may pass (`{customer_name}` …) and the model may record.
    #[serde(default)]
    pub variables: Vec<String>,
    /// A JSON schema of what to extract when a conversation ends (an object schema).
    #[serde(default)]
    pub extract: Option<toml::Value>,
    /// A customer's message containing one of these words goes to a person at once.
    #[serde(default = "default_hand_off_keywords")]
    pub hand_off_keywords: Vec<String>,
    /// What the customer is told when a person takes over.
    #[serde(default = "default_hand_off_message")]
    pub hand_off_message: String,
    /// The built-in retrieval answers only at or above this confidence (0–1).
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f64,
    /// Longest reply, in characters (at most WhatsApp's 4,096).
    #[serde(default = "default_max_reply_chars")]
    pub max_reply_chars: usize,
    /// `split` a longer reply into several messages on sentence boundaries, or `trim` it.
    #[serde(default = "default_long_replies")]
    pub long_replies: String,
    /// Memory per customer, in tokens (estimated at four characters a token): the oldest
    /// turns are dropped beyond it.
    #[serde(default = "default_memory_tokens")]
    pub memory_tokens: usize,
    /// The whole reply's deadline, retries included.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Business numbers (display number or phone number id) whose inbound WhatsApp messages
    /// this assistant answers by itself.
    #[serde(default)]
    pub auto_reply: Vec<String>,
    /// When auto-reply answers: `always`, or `business` (within `[missed_call.business_hours]`;
    /// outside them the customer gets the hand-off message and a person takes over).
    #[serde(default = "default_hours")]
    pub hours: String,
    /// An OpenAI-compatible model; absent, the assistant answers from its knowledge alone.
    #[serde(default)]
    pub provider: Option<ProviderConfig>,
}

/// `[assistants.provider]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The API base, ending before `/chat/completions`: `https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1` (Ollama), `https://openrouter.ai/api/v1` …
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key; empty for local servers without one.
    #[serde(default)]
    pub api_key_env: String,
    /// `Authorization: Bearer` (OpenAI and most) or `api-key` (Azure OpenAI's header).
    #[serde(default = "default_auth")]
    pub auth: String,
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// Most tokens a reply may use.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
}

fn default_hand_off_keywords() -> Vec<String> {
    ["human", "person", "agent", "operator"]
        .map(String::from)
        .to_vec()
}
fn default_hand_off_message() -> String {
    "Thanks, I've passed your message to a colleague, who will answer you here shortly.".into()
}
fn default_min_confidence() -> f64 {
    0.5
}
fn default_max_reply_chars() -> usize {
    WHATSAPP_TEXT_LIMIT
}
fn default_long_replies() -> String {
    "split".into()
}
fn default_memory_tokens() -> usize {
    2000
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_hours() -> String {
    "always".into()
}
fn default_auth() -> String {
    "bearer".into()
}
fn default_temperature() -> f32 {
    0.3
}
fn default_max_tokens() -> u32 {
    500
}

/// What to do with a reply longer than `max_reply_chars`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongReplies {
    Split,
    Trim,
}

/// How the key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Bearer,
    ApiKeyHeader,
}

/// A validated provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// `base_url` + `/chat/completions`.
    pub url: String,
    pub model: String,
    pub api_key: Option<SecretString>,
    pub auth: Auth,
    pub temperature: f32,
    pub max_tokens: u32,
}

/// One knowledge file, read.
#[derive(Debug, Clone)]
pub struct KnowledgeFile {
    pub path: PathBuf,
    pub text: String,
}

/// A validated assistant.
#[derive(Debug, Clone)]
pub struct AssistantSettings {
    pub name: String,
    pub instructions: String,
    pub knowledge: Vec<KnowledgeFile>,
    pub variables: Vec<String>,
    /// The extraction schema, as JSON.
    pub extract: Option<serde_json::Value>,
    pub hand_off_keywords: Vec<String>,
    pub hand_off_message: String,
    pub min_confidence: f64,
    pub max_reply_chars: usize,
    pub long_replies: LongReplies,
    pub memory_tokens: usize,
    pub timeout: Duration,
    /// The phone number ids it answers by itself.
    pub auto_reply: Vec<String>,
    /// Auto-reply only within the business hours (else it hands off).
    pub business_hours_only: bool,
    pub provider: Option<ProviderSettings>,
}

/// Validates every entry; `env` is the environment the configuration was loaded with (where
/// `api_key_env` is looked up).
pub fn settings(
    entries: &[AssistantConfig],
    env: &[(String, String)],
    senders: &[super::Sender],
    business_hours: Option<&super::BusinessHours>,
) -> Result<Vec<AssistantSettings>, String> {
    let mut out: Vec<AssistantSettings> = Vec::with_capacity(entries.len());
    for (i, a) in entries.iter().enumerate() {
        let at = format!("assistants[{i}]");
        let mut s = one(a, &at, env)?;
        if s.business_hours_only && business_hours.is_none() {
            return Err(format!(
                "assistant \"{}\": hours = \"business\" but [missed_call.business_hours] is not set; set it, or hours = \"always\"",
                s.name
            ));
        }
        if out.iter().any(|o| o.name == s.name) {
            return Err(format!("{at}: a second assistant is named \"{}\"", s.name));
        }
        for number in &a.auto_reply {
            let n = number.trim();
            let sender = senders
                .iter()
                .find(|x| x.phone_number_id == n || x.display_number.as_str() == n)
                .ok_or_else(|| {
                    format!(
                        "assistant \"{}\": auto_reply names {n}, which is not one of [[senders]] (give its display number or phone_number_id)",
                        s.name
                    )
                })?;
            if let Some(other) = out
                .iter()
                .find(|o| o.auto_reply.contains(&sender.phone_number_id))
            {
                return Err(format!(
                    "assistant \"{}\": number {n} is already answered by assistant \"{}\"; one assistant per number",
                    s.name, other.name
                ));
            }
            s.auto_reply.push(sender.phone_number_id.clone());
        }
        out.push(s);
    }
    Ok(out)
}

fn one(
    a: &AssistantConfig,
    at: &str,
    env: &[(String, String)],
) -> Result<AssistantSettings, String> {
    let name = a.name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{at}.name = \"{}\": use letters, digits, '-' and '_' (it is part of /api/v1/assistants/{{name}}/replies)",
            a.name
        ));
    }
    let at = format!("assistant \"{name}\"");
    if !(0.0..=1.0).contains(&a.min_confidence) {
        return Err(format!("{at}: min_confidence must be between 0 and 1"));
    }
    if !(1..=WHATSAPP_TEXT_LIMIT).contains(&a.max_reply_chars) {
        return Err(format!(
            "{at}: max_reply_chars must be between 1 and {WHATSAPP_TEXT_LIMIT} (WhatsApp's limit for a text message)"
        ));
    }
    let long_replies = match a.long_replies.as_str() {
        "split" => LongReplies::Split,
        "trim" => LongReplies::Trim,
        other => {
            return Err(format!(
                "{at}: long_replies = \"{other}\"; use \"split\" or \"trim\""
            ));
        }
    };
    if !(100..=200_000).contains(&a.memory_tokens) {
        return Err(format!(
            "{at}: memory_tokens must be between 100 and 200000"
        ));
    }
    if !(500..=600_000).contains(&a.timeout_ms) {
        return Err(format!("{at}: timeout_ms must be between 500 and 600000"));
    }
    if a.hand_off_message.trim().is_empty() {
        return Err(format!(
            "{at}: hand_off_message is empty; a customer handed to a person must be told so"
        ));
    }
    for v in &a.variables {
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "{at}: variable \"{v}\": use letters, digits and '_'"
            ));
        }
    }
    let knowledge = a
        .knowledge
        .iter()
        .map(|p| read_knowledge(Path::new(p), &at))
        .collect::<Result<Vec<_>, _>>()?;
    let extract = match &a.extract {
        None => None,
        Some(v) => {
            let json = serde_json::to_value(v).map_err(|e| format!("{at}: extract: {e}"))?;
            if json.get("type").and_then(|t| t.as_str()) != Some("object")
                || !json.get("properties").is_some_and(|p| p.is_object())
            {
                return Err(format!(
                    "{at}: extract must be a JSON schema of an object: type = \"object\" and a properties table"
                ));
            }
            if let Err(e) = jsonschema::validator_for(&json) {
                return Err(format!("{at}: extract is not a valid JSON schema: {e}"));
            }
            Some(json)
        }
    };
    let provider = a
        .provider
        .as_ref()
        .map(|p| provider(p, &at, env))
        .transpose()?;
    Ok(AssistantSettings {
        name: name.to_string(),
        instructions: a.instructions.trim().to_string(),
        knowledge,
        variables: a.variables.clone(),
        extract,
        hand_off_keywords: a
            .hand_off_keywords
            .iter()
            .map(|k| k.trim().to_lowercase())
            .filter(|k| !k.is_empty())
            .collect(),
        hand_off_message: a.hand_off_message.trim().to_string(),
        min_confidence: a.min_confidence,
        max_reply_chars: a.max_reply_chars,
        long_replies,
        memory_tokens: a.memory_tokens,
        timeout: Duration::from_millis(a.timeout_ms),
        auto_reply: Vec::new(),
        business_hours_only: match a.hours.as_str() {
            "always" => false,
            "business" => true,
            other => {
                return Err(format!(
                    "{at}: hours = \"{other}\"; use \"always\" or \"business\""
                ));
            }
        },
        provider,
    })
}

fn read_knowledge(path: &Path, at: &str) -> Result<KnowledgeFile, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("{at}: knowledge file {shown} cannot be read: {e}"))?;
    if meta.len() > MAX_KNOWLEDGE_BYTES {
        return Err(format!(
            "{at}: knowledge file {shown} is {} KiB; the limit is {} KiB (split it, or keep only what customers ask about)",
            meta.len() / 1024,
            MAX_KNOWLEDGE_BYTES / 1024
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{at}: knowledge file {shown} cannot be read as UTF-8 text: {e}"))?;
    Ok(KnowledgeFile {
        path: path.to_path_buf(),
        text,
    })
}

fn provider(
    p: &ProviderConfig,
    at: &str,
    env: &[(String, String)],
) -> Result<ProviderSettings, String> {
    let base = p.base_url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(base)
        .map_err(|e| format!("{at}: provider.base_url = \"{base}\" is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{at}: provider.base_url must be http:// or https://"
        ));
    }
    if p.model.trim().is_empty() {
        return Err(format!(
            "{at}: provider.model is empty; name the model (e.g. \"gpt-4o-mini\", \"llama3.2\")"
        ));
    }
    let auth = match p.auth.as_str() {
        "bearer" => Auth::Bearer,
        "api-key" => Auth::ApiKeyHeader,
        other => {
            return Err(format!(
                "{at}: provider.auth = \"{other}\"; use \"bearer\" or \"api-key\" (Azure OpenAI)"
            ));
        }
    };
    let api_key = if p.api_key_env.trim().is_empty() {
        None
    } else {
        let var = p.api_key_env.trim();
        let value = env
            .iter()
            .find(|(k, v)| k == var && !v.is_empty())
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                format!("{at}: provider.api_key_env names {var}, which is not set; set {var} to the provider's API key")
            })?;
        Some(SecretString::from(value))
    };
    if !(0.0..=2.0).contains(&p.temperature) {
        return Err(format!(
            "{at}: provider.temperature must be between 0 and 2"
        ));
    }
    if !(1..=32_000).contains(&p.max_tokens) {
        return Err(format!(
            "{at}: provider.max_tokens must be between 1 and 32000"
        ));
    }
    Ok(ProviderSettings {
        url: format!("{base}/chat/completions"),
        model: p.model.trim().to_string(),
        api_key,
        auth,
        temperature: p.temperature,
        max_tokens: p.max_tokens,
    })
}

/// The assistant that evaluates the conversations of `sender_id` when they end: the one
/// answering the number, when it declares `extract` and has a model to extract with.
pub fn evaluator<'a>(
    assistants: &'a [AssistantSettings],
    sender_id: &str,
) -> Option<&'a AssistantSettings> {
    assistants.iter().find(|a| {
        a.extract.is_some() && a.provider.is_some() && a.auto_reply.iter().any(|n| n == sender_id)
    })
}
