//! `ringback calling …`: WhatsApp Business Calling from the command line — inspect and apply
//! a number's calling settings, see a user's call permission with its history, ask for
//! permission, and place a call.

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Cli, load};
use crate::config::{Sender, Settings};

#[derive(Subcommand, Debug)]
pub enum CallingCommand {
    /// Show a number's calling settings as Meta has them (GET /{phone-number-id}/settings).
    Settings(NumberArg),
    /// Apply [calling] from the configuration to the number (POST /{phone-number-id}/settings).
    /// Flags override the file: `ringback calling apply --status ENABLED`.
    Apply(ApplyArgs),
    /// A user's call permission: state, what may be done now and why, and every change.
    ///
    /// Example: ringback calling permission --user "+91 98765 43210"
    Permission(UserArgs),
    /// Ask a user for permission to call them (an interactive call_permission_request),
    /// through the running server, which checks Meta's limits first.
    Request(RequestArgs),
    /// Call a user (business-initiated) through the running server, which checks permission
    /// and region first. Without --sdp a placeholder offer is sent, useful with the sandbox only.
    Call(CallArgs),
}

#[derive(Args, Debug)]
pub struct NumberArg {
    /// The sender's phone_number_id (default: the first [[senders]] entry).
    #[arg(long)]
    pub number: Option<String>,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub number: NumberArg,
    /// ENABLED or DISABLED (default: calling.status).
    #[arg(long)]
    pub status: Option<String>,
    /// Grant callers a temporary permission to be called back (default: calling.callback_permission).
    #[arg(long)]
    pub callback_permission: Option<bool>,
}

#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(flatten)]
    pub number: NumberArg,
    /// The user's number, E.164.
    #[arg(long)]
    pub user: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    #[command(flatten)]
    pub number: NumberArg,
    #[arg(long)]
    pub to: String,
    /// The sentence above WhatsApp's accept/decline buttons.
    #[arg(
        long,
        default_value = "May we call you on WhatsApp about your enquiry?"
    )]
    pub text: String,
}

#[derive(Args, Debug)]
pub struct CallArgs {
    #[command(flatten)]
    pub number: NumberArg,
    #[arg(long)]
    pub to: String,
    /// A file with the SDP offer of your WebRTC endpoint.
    #[arg(long)]
    pub sdp: Option<std::path::PathBuf>,
}

/// A minimal SDP offer: accepted by the sandbox; Meta needs a real WebRTC endpoint's offer.
const PLACEHOLDER_SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=ringback\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n";

fn sender<'a>(s: &'a Settings, n: &NumberArg) -> anyhow::Result<&'a Sender> {
    s.sender(n.number.as_deref())
        .map_err(|e| anyhow::anyhow!("--number {e}"))
}

pub(super) fn client(s: &Settings) -> anyhow::Result<crate::cloud_api::Client> {
    let base = match (&s.api_base, s.sandbox_listen) {
        (Some(b), _) => b.clone(),
        (None, Some(addr)) => format!("http://{addr}"),
        (None, None) => anyhow::bail!("no whatsapp.api_base and no sandbox configured"),
    };
    Ok(crate::cloud_api::Client::new(
        &base,
        &s.api_version,
        s.request_timeout,
    ))
}

pub async fn run(cli: &Cli, c: &CallingCommand) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    match c {
        CallingCommand::Settings(n) => {
            let sender = sender(&s, n)?;
            let v = client(&s)?
                .number_settings(&sender.phone_number_id, &sender.access_token)
                .await
                .map_err(|e| anyhow::anyhow!("reading the settings failed: {e}"))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        CallingCommand::Apply(a) => {
            let sender = sender(&s, &a.number)?;
            let mut cfg = s.calling.clone();
            if let Some(st) = &a.status {
                cfg.status = st.to_ascii_uppercase();
            }
            if let Some(cb) = a.callback_permission {
                cfg.callback_permission = cb;
            }
            cfg.validate().map_err(anyhow::Error::msg)?;
            let body = cfg.settings_body(s.business_hours.as_ref()).context(
                "calling.status is empty: pass --status ENABLED (or DISABLED), or set it in [calling]",
            )?;
            client(&s)?
                .update_number_settings(&sender.phone_number_id, &sender.access_token, &body)
                .await
                .map_err(|e| anyhow::anyhow!("Meta refused the settings: {e}"))?;
            println!("applied to {}: {}", sender.phone_number_id, body);
        }
        CallingCommand::Permission(u) => permission(&s, u).await?,
        CallingCommand::Request(r) => {
            let body =
                json!({"to": r.to, "from": sender(&s, &r.number)?.phone_number_id, "text": r.text});
            api_post(&s, "/api/v1/calls/permission-requests", &body).await?;
        }
        CallingCommand::Call(a) => {
            let sdp = match &a.sdp {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("reading the SDP offer {}", p.display()))?,
                None => PLACEHOLDER_SDP.to_string(),
            };
            let body = json!({"to": a.to, "from": sender(&s, &a.number)?.phone_number_id,
                "session": {"sdp_type": "offer", "sdp": sdp}});
            api_post(&s, "/api/v1/calls", &body).await?;
        }
    }
    Ok(())
}

async fn permission(s: &Settings, u: &UserArgs) -> anyhow::Result<()> {
    let sender = sender(s, &u.number)?;
    let user = crate::phone::PhoneE164::parse_international(&u.user).map_err(anyhow::Error::msg)?;
    let store = crate::store::open(&s.store_url).await?;
    let book = crate::calling::PermissionBook::new(store.clone(), s.calling.limits());
    let record = book.get(&sender.phone_number_id, user.digits()).await?;
    let events = store
        .call_permission_events(Some(&sender.phone_number_id), Some(user.digits()))
        .await?;
    let now = crate::time::now_ms();
    if u.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"record": record, "events": events}))?
        );
        return Ok(());
    }
    println!(
        "{user} on {}: {}{}",
        sender.phone_number_id,
        record.status_at(now).as_str(),
        match (record.permanent, record.expires_at) {
            (true, _) => " (permanent)".to_string(),
            (false, Some(e)) => format!(" until {}", crate::time::display(e)),
            _ => String::new(),
        }
    );
    let verdict = |r: Result<(), crate::calling::Refusal>| match r {
        Ok(()) => "yes".to_string(),
        Err(e) => format!("no — {e}"),
    };
    println!(
        "may request permission: {}",
        verdict(record.may_request(now, &book.limits))
    );
    let region = crate::calling::region::business_calls_available(&sender.display_number);
    match region {
        Err(why) => println!("may call: no — {why}"),
        Ok(()) => println!("may call: {}", verdict(record.may_call(now, &book.limits))),
    }
    println!(
        "consecutive unanswered business calls: {}",
        record.consecutive_unanswered
    );
    if !events.is_empty() {
        println!(
            "\n{:<26} {:<10} {:<10} {:<17} REASON",
            "WHEN", "FROM", "TO", "SOURCE"
        );
    }
    for e in events {
        println!(
            "{:<26} {:<10} {:<10} {:<17} {}",
            crate::time::display(e.at),
            e.from,
            e.to,
            e.source,
            e.reason
        );
    }
    Ok(())
}

async fn api_post(s: &Settings, path: &str, body: &Value) -> anyhow::Result<()> {
    let url = format!("http://{}{path}", s.listen);
    let mut req = reqwest::Client::new().post(&url).json(body);
    if let Some(t) = &s.api_token {
        req = req.bearer_auth(t.expose_secret());
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("posting to {url}; is `ringback serve` running?"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("the server answered {status}: {text}");
    }
    println!("{status}: {text}");
    Ok(())
}
