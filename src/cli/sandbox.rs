//! `ringback sandbox`: run the Cloud API emulator alone, play its WhatsApp users, inspect it.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{Cli, load};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub action: Option<SandboxAction>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// Where to post webhooks; defaults to http://<server.listen>/webhooks/whatsapp.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// How many sent and received messages (and waiting webhooks) to keep, each; the oldest
    /// are dropped beyond it. 0 = keep everything. Default: `sandbox.keep` (10,000).
    #[arg(long)]
    pub keep: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum SandboxAction {
    /// Act as a WhatsApp user of a running sandbox; each action sends the webhook Meta would.
    #[command(subcommand)]
    Simulate(UserAction),
    /// Show what a number sent and received, in order (optionally for one user).
    Inspect {
        /// Only this user (their number).
        #[arg(long)]
        user: Option<String>,
        /// Sandbox base URL; defaults to http://<sandbox.listen>.
        #[arg(long)]
        sandbox: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Write to the business: text (default), image, audio, video, document, sticker,
    /// location, contacts, or answer a message: button (template quick reply), button_reply,
    /// list_reply, reaction (these need --context, the wamid of the business message).
    Message {
        #[arg(long)]
        from: String,
        #[arg(long)]
        text: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long)]
        context: Option<String>,
        /// Button or row id.
        #[arg(long)]
        id: Option<String>,
        /// Button or row title.
        #[arg(long)]
        title: Option<String>,
        /// A list row's description.
        #[arg(long)]
        description: Option<String>,
        /// The text comes from a click-to-WhatsApp ad (adds Meta's `referral`).
        #[arg(long)]
        referral: bool,
        #[arg(long)]
        sandbox: Option<String>,
    },
    /// Block the business (and optionally report it): lowers its quality rating.
    Block {
        #[arg(long)]
        from: String,
        #[arg(long)]
        report: bool,
        #[arg(long)]
        sandbox: Option<String>,
    },
    /// Stop (or resume) marketing messages from the business.
    Marketing {
        #[arg(long)]
        from: String,
        /// stop or resume
        #[arg(long, default_value = "stop")]
        value: String,
        #[arg(long)]
        sandbox: Option<String>,
    },
    /// Call the business on WhatsApp (connect), or end a call (terminate; no --duration =
    /// never answered).
    Call {
        #[arg(long)]
        from: String,
        #[arg(long, default_value = "connect")]
        event: String,
        #[arg(long)]
        call_id: Option<String>,
        #[arg(long)]
        duration: Option<u64>,
        #[arg(long)]
        sandbox: Option<String>,
    },
    /// Answer, reject or ignore a business-initiated call that is ringing (see
    /// `ringback calling call`). `--duration` hangs up an answered call after that many seconds.
    AnswerCall {
        #[arg(long)]
        call_id: String,
        /// answer, reject or ignore.
        #[arg(long, default_value = "answer")]
        action: String,
        #[arg(long)]
        duration: Option<u64>,
        #[arg(long)]
        sandbox: Option<String>,
    },
    /// Answer the business's latest call-permission request: accept or reject.
    Permission {
        #[arg(long)]
        from: String,
        #[arg(long, default_value = "accept")]
        response: String,
        #[arg(long)]
        permanent: bool,
        #[arg(long)]
        sandbox: Option<String>,
    },
}

impl UserAction {
    /// The control-API path and body for this action, and the sandbox override.
    fn request(&self) -> (&'static str, Value, Option<&String>) {
        match self {
            UserAction::Message {
                from,
                text,
                kind,
                context,
                id,
                title,
                description,
                referral,
                sandbox,
            } => (
                "/sandbox/users/message",
                json!({"from": from, "text": text, "type": kind, "context": context, "id": id, "title": title,
                    "description": description, "referral": referral}),
                sandbox.as_ref(),
            ),
            UserAction::Block {
                from,
                report,
                sandbox,
            } => (
                "/sandbox/users/block",
                json!({"from": from, "report": report}),
                sandbox.as_ref(),
            ),
            UserAction::Marketing {
                from,
                value,
                sandbox,
            } => (
                "/sandbox/users/preferences",
                json!({"from": from, "value": value}),
                sandbox.as_ref(),
            ),
            UserAction::Call {
                from,
                event,
                call_id,
                duration,
                sandbox,
            } => (
                "/sandbox/users/call",
                json!({"from": from, "event": event, "call_id": call_id, "duration": duration}),
                sandbox.as_ref(),
            ),
            UserAction::AnswerCall {
                call_id,
                action,
                duration,
                sandbox,
            } => (
                "/sandbox/users/answer-call",
                json!({"call_id": call_id, "action": action, "duration": duration}),
                sandbox.as_ref(),
            ),
            UserAction::Permission {
                from,
                response,
                permanent,
                sandbox,
            } => (
                "/sandbox/users/call-permission",
                json!({"from": from, "response": response, "permanent": permanent}),
                sandbox.as_ref(),
            ),
        }
    }
}

/// Drops `null` fields so the control API sees only what was given.
fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

pub async fn run(cli: &Cli, a: &SandboxArgs) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let default_base = format!("http://{}", s.sandbox.listen);
    match &a.action {
        Some(SandboxAction::Simulate(action)) => {
            let (path, body, base) = action.request();
            let base = base.cloned().unwrap_or(default_base);
            let resp = reqwest::Client::new()
                .post(format!("{base}{path}"))
                .json(&compact(body))
                .send()
                .await
                .with_context(|| format!("posting to the sandbox at {base}; is it running?"))?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            anyhow::ensure!(status.is_success(), "the sandbox answered {status}: {text}");
            println!("{text}");
            Ok(())
        }
        Some(SandboxAction::Inspect { user, sandbox }) => {
            let base = sandbox.clone().unwrap_or(default_base);
            let mut url = format!("{base}/sandbox/conversations");
            if let Some(u) = user {
                url += &format!(
                    "?user={}",
                    u.chars().filter(char::is_ascii_digit).collect::<String>()
                );
            }
            let v: Value = reqwest::get(&url)
                .await
                .with_context(|| format!("reading {url}"))?
                .json()
                .await?;
            for m in v["data"].as_array().into_iter().flatten() {
                let arrow = if m["direction"] == "out" {
                    "→"
                } else {
                    "←"
                };
                let body = &m["body"];
                let summary = body
                    .pointer("/text/body")
                    .or_else(|| body.pointer("/template/name"))
                    .or_else(|| body.pointer("/interactive/body/text"))
                    .or_else(|| body.pointer("/interactive/button_reply/title"))
                    .or_else(|| body.pointer("/interactive/list_reply/title"))
                    .or_else(|| body.pointer("/button/text"))
                    .or_else(|| body.pointer("/reaction/emoji"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                println!(
                    "{} {arrow} {:<14} {:<12} {:<14} {}",
                    crate::time::display(m["at"].as_i64().unwrap_or(0)),
                    m["user"].as_str().unwrap_or(""),
                    m["type"].as_str().unwrap_or(""),
                    m["outcome"].as_str().unwrap_or(""),
                    summary
                );
            }
            Ok(())
        }
        None => serve(&s, a).await,
    }
}

async fn serve(s: &crate::config::Settings, a: &SandboxArgs) -> anyhow::Result<()> {
    crate::telemetry::init_logs(&s.log.filter, s.log.format == "json");
    let webhook = a
        .webhook_url
        .clone()
        .unwrap_or_else(|| format!("http://{}/webhooks/whatsapp", s.listen));
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let (trigger, shutdown) = crate::shutdown::channel();
    let mut settings = crate::app::sandbox_settings_for(s, Some(webhook.clone()));
    if let Some(keep) = a.keep {
        settings.keep = keep;
    }
    let mut names: Vec<&str> = settings.templates.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let names = names.join(", ");
    let sb = crate::sandbox::Sandbox::start(settings, shutdown.clone());
    println!(
        "Cloud API sandbox on http://{} posting webhooks to {webhook}",
        listener.local_addr()?
    );
    for n in &s.senders {
        println!(
            "  phone_number_id {} (WABA {}, token from senders[].access_token); templates {names}",
            n.phone_number_id, n.waba_id
        );
    }
    let server = tokio::spawn(sb.serve(listener, shutdown));
    crate::app::signal().await;
    trigger.fire();
    let _ = server.await;
    Ok(())
}
