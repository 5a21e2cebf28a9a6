//! The command line. Each subcommand is a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::config::{Config, Settings};

/// Ringback turns missed phone calls into WhatsApp conversations.
///
/// A caller rings your business and nobody answers; Ringback hears about it (Twilio, a PBX, or
/// any system that can POST a webhook) and sends the caller a WhatsApp message through the
/// WhatsApp Business Cloud API: an approved template, or free-form text when the caller wrote
/// to you in the last 24 hours.
///
/// Start with `ringback serve`: with no configuration it runs a complete demo on SQLite with a
/// built-in Cloud API sandbox. Then `ringback simulate call --from "+91 98765 43210"` and
/// `ringback messages`.
#[derive(Parser, Debug)]
#[command(name = "ringback", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Configuration file (TOML). Without it, built-in defaults (a demo) apply. Every field can
    /// also be set with RINGBACK_<SECTION>__<FIELD> variables; see `ringback config example`.
    #[arg(long, short, global = true, env = "RINGBACK_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: webhooks, API, outbox, and (unless whatsapp.api_base is set) the sandbox.
    Serve(ServeArgs),
    /// Pretend something happened, to try Ringback without a phone.
    #[command(subcommand)]
    Simulate(Simulate),
    /// List the messages Ringback sent, newest first, with their delivery state.
    Messages(MessagesArgs),
    /// List calls Ringback heard about and what it decided for each.
    Calls(MessagesArgs),
    /// WhatsApp Business Calling: a number's calling settings, users' call permissions,
    /// permission requests and business-initiated calls.
    #[command(subcommand)]
    Calling(calling::CallingCommand),
    /// Conversations with customers: list them (filters: --state, --number, --contact), show
    /// one with its transcript, close one.
    Conversations(conversations::ConversationsArgs),
    /// Endpoints that receive Ringback's events as signed webhooks: add, list, remove,
    /// rotate secrets, read the delivery log, replay.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Flows (automations written as files): `ringback flows check` validates them, `ringback
    /// flows test FLOW --event fixture.json` runs one against a sandbox on a simulated clock.
    #[command(subcommand)]
    Flows(flows::FlowsCommand),
    /// AI assistants (`[[assistants]]` in the configuration): list them, or ask one as a
    /// customer would (`ringback assistants ask NAME --customer ID "text"`).
    #[command(subcommand)]
    Assistants(assistants::AssistantsCommand),
    /// Inbound events set aside as dead (unreadable or unprocessable): list and retry them.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Manage API keys for /api/v1.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// The people who sign in to the web console (http://<server.listen>/): create, list,
    /// disable. Roles: admin (settings too) or agent.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Click-to-chat links: a wa.me link, the app's deep link and a QR code (PNG, SVG) that
    /// open a chat with the business, optionally tracked (`/l/CODE` counts clicks; the first
    /// message is attributed to the link).
    #[command(subcommand)]
    Links(links::LinksCommand),
    /// List the message templates Ringback knows (synced from the Cloud API), with their
    /// variables and a preview.
    Templates,
    /// Explain a Meta error code: what it means, whether Ringback retries it, how to fix it.
    Explain {
        /// The code, e.g. 131047.
        code: i64,
    },
    /// Print or check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create or upgrade the database schema, then exit (`serve` also does this).
    Migrate,
    /// The nodes sharing this store (several `ringback serve` on one PostgreSQL database):
    /// which are alive, which one leads (processes events and sends), and each number's lane.
    Cluster(cluster::ClusterArgs),
    /// Work on whole stores: `ringback store copy --from sqlite://… --to postgres://…` moves
    /// an installation's data to another database (see `ringback store copy --help`).
    #[command(subcommand)]
    Store(store_copy::StoreCommand),
    /// Run the Cloud API sandbox alone (`ringback sandbox --listen …`), play its users
    /// (`ringback sandbox simulate …`) or look at its conversations (`ringback sandbox inspect`).
    Sandbox(SandboxArgs),
    /// Measure throughput and latency: drives signed missed-call webhooks through a server
    /// started in-process into the sandbox, and reports calls/s, latency and RSS.
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Override server.listen.
    #[arg(long)]
    pub listen: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub json_logs: bool,
}

#[derive(Subcommand, Debug)]
pub enum Simulate {
    /// Post a signed missed-call event to a running server's generic call webhook.
    ///
    /// Example: ringback simulate call --from "+91 98765 43210" --status no-answer
    Call(SimulateCall),
    /// Make a WhatsApp user write to your business number (through the running sandbox),
    /// which opens their 24-hour window.
    Message(SimulateMessage),
}

#[derive(Args, Debug)]
pub struct SimulateCall {
    /// The caller's number, E.164 or national format (read in missed_call.default_region).
    #[arg(long)]
    pub from: String,
    /// The business line that was called; defaults to the first sender's number.
    #[arg(long)]
    pub to: Option<String>,
    /// How the call ended: no-answer, busy, canceled, failed, rejected, answered, ringing.
    #[arg(long, default_value = "no-answer")]
    pub status: String,
    /// Seconds it rang.
    #[arg(long)]
    pub ring_seconds: Option<u32>,
    /// The PBX's call id; a random one by default. The same id twice is one call.
    #[arg(long)]
    pub call_id: Option<String>,
    /// Caller's name, if the PBX knows it.
    #[arg(long)]
    pub name: Option<String>,
    /// Server base URL; defaults to http://<server.listen>.
    #[arg(long)]
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct SimulateMessage {
    /// The user's number.
    #[arg(long)]
    pub from: String,
    /// What they write.
    #[arg(long, default_value = "Hi!")]
    pub text: String,
    /// Sandbox base URL; defaults to http://<sandbox.listen>.
    #[arg(long)]
    pub sandbox: Option<String>,
}

#[derive(Args, Debug)]
pub struct MessagesArgs {
    /// How many to show.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the default configuration file, every field commented.
    Example,
    /// Load and validate the configuration (file + environment) and say what is wrong.
    Check,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn load(cli: &Cli) -> anyhow::Result<(Config, Settings)> {
    let config = Config::load(cli.config.as_deref())?;
    let settings = config.build()?;
    Ok((config, settings))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Config(ConfigCommand::Example) => {
            print!("{}", crate::config::DEFAULT_TOML);
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => {
            let (_, s) = load(&cli)?;
            println!(
                "configuration is valid: {} sender(s), store {}, WhatsApp endpoint {}",
                s.senders.len(),
                crate::config::redact::url(&s.store_url),
                s.api_base.as_deref().unwrap_or("the built-in sandbox")
            );
            if s.demo_secrets {
                println!(
                    "warning: demo secrets are in use; set real ones before exposing the server"
                );
            }
            Ok(())
        }
        Command::Migrate => {
            let (_, s) = load(&cli)?;
            crate::store::open(&s.store_url)
                .await
                .context("opening the store")?;
            println!(
                "database at {} is up to date",
                crate::config::redact::url(&s.store_url)
            );
            Ok(())
        }
        Command::Serve(args) => serve(&cli, args).await,
        Command::Simulate(Simulate::Call(c)) => simulate_call(&cli, c).await,
        Command::Simulate(Simulate::Message(m)) => simulate_message(&cli, m).await,
        Command::Messages(a) => messages(&cli, a).await,
        Command::Calls(a) => calls(&cli, a).await,
        Command::Sandbox(a) => sandbox::run(&cli, a).await,
        Command::Bench(a) => crate::bench::run(a).await,
        Command::Keys(k) => admin::keys(&cli, k).await,
        Command::Users(u) => users::users(&cli, u).await,
        Command::Links(l) => links::run(&cli, l).await,
        Command::Events(e) => events::run(&cli, e).await,
        Command::Conversations(a) => conversations::run(&cli, a).await,
        Command::Webhooks(w) => webhooks::run(&cli, w).await,
        Command::Flows(f) => flows::run(&cli, f).await,
        Command::Assistants(a) => assistants::run(&cli, a.clone()).await,
        Command::Calling(c) => calling::run(&cli, c).await,
        Command::Templates => admin::templates(&cli).await,
        Command::Store(s) => store_copy::run(s).await,
        Command::Cluster(a) => cluster::run(&cli, a).await,
        Command::Explain { code } => {
            match crate::cloud_api::errors::lookup(*code) {
                Some(i) => println!(
                    "{code}: {}\nRingback: {:?}\nFix: {}",
                    i.meaning, i.action, i.fix
                ),
                None => println!("{}", crate::cloud_api::errors::explain(*code)),
            }
            Ok(())
        }
    }
}

/// The settings `serve` runs with: `--listen` replaces server.listen *before* validation, so
/// the checks on an exposed address (API token, demo secrets) see the address really bound.
pub(crate) fn serve_settings(cli: &Cli, args: &ServeArgs) -> anyhow::Result<Settings> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(l) = &args.listen {
        crate::config::parse_listen("--listen", l)?;
        config.server.listen = l.clone();
        return config
            .build()
            .with_context(|| format!("with --listen {l} in place of server.listen"));
    }
    Ok(config.build()?)
}

async fn serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    let settings = serve_settings(cli, args)?;
    crate::telemetry::init_logs(
        &settings.log.filter,
        args.json_logs || settings.log.format == "json",
    );
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let sandbox_listener = match (&settings.api_base, settings.sandbox_listen) {
        (None, Some(addr)) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the sandbox to {addr}"))?,
        ),
        _ => None,
    };
    let running = crate::app::start(settings.clone(), listener, sandbox_listener).await?;
    println!("{}", crate::app::banner(&settings, &running));
    crate::app::signal().await;
    tracing::info!("Shutting down: finishing in-flight work.");
    running.stop().await;
    Ok(())
}

async fn simulate_call(cli: &Cli, c: &SimulateCall) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let server = c
        .server
        .clone()
        .unwrap_or_else(|| format!("http://{}", s.listen));
    let call_id = c
        .call_id
        .clone()
        .unwrap_or_else(|| format!("sim-{}", uuid::Uuid::now_v7().simple()));
    let to =
        c.to.clone()
            .unwrap_or_else(|| s.senders[0].display_number.to_string());
    let body = serde_json::json!({
        "call_id": call_id, "from": c.from, "to": to, "status": c.status,
        "ring_seconds": c.ring_seconds, "caller_name": c.name,
    });
    let body = serde_json::to_vec(&body)?;
    let sig = crate::signature::sign_sha256_hex(s.calls_secret.expose_secret().as_bytes(), &body);
    let resp = reqwest::Client::new()
        .post(format!("{server}/webhooks/calls"))
        .header("Content-Type", "application/json")
        .header(crate::inbound::generic::SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await
        .with_context(|| format!("posting to {server}; is `ringback serve` running?"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("the server answered {status}: {text}");
    }
    println!("call {call_id} from {} posted ({status}): {text}", c.from);
    println!("see what Ringback did: ringback calls; ringback messages");
    Ok(())
}

async fn simulate_message(cli: &Cli, m: &SimulateMessage) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let base = m
        .sandbox
        .clone()
        .unwrap_or_else(|| format!("http://{}", s.sandbox.listen));
    let resp = reqwest::Client::new()
        .post(format!("{base}/sandbox/simulate/message"))
        .json(&serde_json::json!({"from": m.from, "text": m.text}))
        .send()
        .await
        .with_context(|| {
            format!(
                "posting to the sandbox at {base}; is `ringback serve` running with the sandbox?"
            )
        })?;
    println!(
        "{}: {}",
        resp.status(),
        resp.text().await.unwrap_or_default()
    );
    Ok(())
}

async fn messages(cli: &Cli, a: &MessagesArgs) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    let rows = store.list_messages(a.limit).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no messages yet; try `ringback simulate call --from \"+91 98765 43210\"`");
    }
    println!(
        "{:<36} {:<16} {:<12} {:<10} {:<4} WHY / ERROR",
        "ID", "TO", "KIND", "STATE", "TRY"
    );
    for r in rows {
        let why = r
            .last_error
            .clone()
            .filter(|_| r.state == "failed" || r.state == "queued")
            .unwrap_or(r.reason.clone());
        println!(
            "{:<36} {:<16} {:<12} {:<10} {:<4} {}",
            r.id, r.to, r.kind, r.state, r.attempts, why
        );
    }
    Ok(())
}

async fn calls(cli: &Cli, a: &MessagesArgs) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    let rows = store.list_calls(a.limit).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<26} {:<9} {:<16} {:<10} {:<10} REASON",
        "WHEN", "SOURCE", "CALLER", "OUTCOME", "DECISION"
    );
    for r in rows {
        println!(
            "{:<26} {:<9} {:<16} {:<10} {:<10} {}",
            crate::time::display(r.occurred_at),
            r.source,
            r.caller_e164.unwrap_or(r.caller_raw),
            r.outcome,
            r.decision,
            r.reason
        );
    }
    Ok(())
}

mod admin;
mod assistants;
mod calling;
mod cluster;
mod conversations;
mod events;
mod flow_runs;
pub mod flows;
mod links;
mod sandbox;
mod store_copy;
mod users;
mod webhooks;
pub use sandbox::SandboxArgs;
