//! `ringback flows …`: check flow files before they run, try one on a simulated clock (the
//! runs of the server are in [`super::flow_runs`]).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{Cli, load};
use crate::cloud_api::template::Template;
use crate::flows::{Flow, Problem, check_flow, definition};

#[derive(Subcommand, Debug)]
pub enum FlowsCommand {
    /// Check flow files: the format, every step's keys, targets that exist, no loop without a
    /// delay, templates that exist with every variable mapped, valid schedules and variables.
    /// Prints each problem as FILE:LINE: step 'ID': what to change; exits 1 if there is one.
    Check {
        /// Flow files (`*.toml`) or directories of them.
        #[arg(default_value = "flows")]
        paths: Vec<PathBuf>,
        /// Skip the template checks (no store or configuration at hand).
        #[arg(long)]
        no_templates: bool,
    },
    /// Run one flow once against a sandbox started for it, on a simulated clock (delays and
    /// waits pass at once), printing every step with its input and output. Sends go through
    /// the same send policy as API sends (window, consent, templates); HTTP steps make their
    /// requests unless --respond gives their answer. Exits 1 if the run fails.
    ///
    /// Example: ringback flows test examples/flows/lead-qualification.toml --event lead.json
    /// --reply "How much for 5 kW?" --respond qualify='{"reply": "About 6,000 EUR"}'
    /// --respond qualified='{"status": 201}'
    Test {
        /// The flow file.
        flow: PathBuf,
        /// The trigger's data as a JSON file: an event's `data` (as `ringback events` shows
        /// it), an HTTP trigger's body, a manual run's input. Default: {}.
        #[arg(long)]
        event: Option<PathBuf>,
        /// The customer (E.164). Default: the trigger's call.caller, phone or contact.phone.
        #[arg(long)]
        contact: Option<String>,
        /// The customer's name (contact.name).
        #[arg(long)]
        name: Option<String>,
        /// A reply of the customer to a wait_for_reply step, in order (repeat for more);
        /// without one, the wait times out.
        #[arg(long = "reply")]
        replies: Vec<String>,
        /// STEP=JSON: that step's output instead of performing it (an HTTP answer, an
        /// assistant's reply); repeat for more steps.
        #[arg(long = "respond")]
        respond: Vec<String>,
        /// The customer wrote just before (their 24-hour window is open).
        #[arg(long)]
        window_open: bool,
        /// Start the simulated clock at this time (RFC 3339). Default: now.
        #[arg(long)]
        at: Option<String>,
    },
    /// List runs, newest first: id, flow, status, customer, when, and the error of a failed
    /// one. The server's store (`store.url`) is read directly.
    ///
    /// Example: ringback flows runs follow-up --status failed
    Runs {
        /// Only this flow's runs.
        flow: Option<String>,
        /// running, sleeping, awaiting_reply, done, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One run with its timeline: each step, when, its input and output, errors and retries.
    Run {
        /// The run's id (`run_…`).
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run that has not ended (a running server leaves it within a second).
    Cancel { id: String },
    /// Take a failed or cancelled run up again at the step where it stopped.
    Rerun { id: String },
}

pub async fn run(cli: &Cli, command: &FlowsCommand) -> anyhow::Result<()> {
    match command {
        FlowsCommand::Check {
            paths,
            no_templates,
        } => {
            let templates = if *no_templates {
                None
            } else {
                Some(registry(cli).await?)
            };
            let files = flow_files(paths)?;
            let mut bad = 0;
            for file in &files {
                let problems = check_file(file, templates.as_deref())?;
                if problems.is_empty() {
                    println!("{}: ok", file.display());
                }
                for p in &problems {
                    println!("{}", located(file, p));
                }
                bad += usize::from(!problems.is_empty());
            }
            println!("{} flow(s) checked, {} with problems", files.len(), bad);
            if bad > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        FlowsCommand::Test {
            flow,
            event,
            contact,
            name,
            replies,
            respond,
            window_open,
            at,
        } => {
            let options = TrialArgs {
                event: event.clone(),
                contact: contact.clone(),
                name: name.clone(),
                replies: replies.clone(),
                respond: respond.clone(),
                window_open: *window_open,
                at: at.clone(),
            };
            if !test(cli, flow, options).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        FlowsCommand::Runs {
            flow,
            status,
            limit,
            json,
        } => super::flow_runs::list(cli, flow.clone(), status.clone(), *limit, *json).await,
        FlowsCommand::Run { id, json } => super::flow_runs::show(cli, id, *json).await,
        FlowsCommand::Cancel { id } => super::flow_runs::cancel(cli, id).await,
        FlowsCommand::Rerun { id } => super::flow_runs::rerun(cli, id).await,
    }
}

/// `flows test`'s options.
struct TrialArgs {
    event: Option<PathBuf>,
    contact: Option<String>,
    name: Option<String>,
    replies: Vec<String>,
    respond: Vec<String>,
    window_open: bool,
    at: Option<String>,
}

/// Runs the trial; `false` when the flow has problems or its run failed.
async fn test(cli: &Cli, file: &Path, a: TrialArgs) -> anyhow::Result<bool> {
    let (_, s) = load(cli)?;
    // The sandbox knows every template `flows check` knows (synced, declared, its own), so a
    // flow that passes the check can send them.
    let mut templates = registry(cli).await?;
    let mut seen = std::collections::HashSet::new();
    templates.retain(|t| seen.insert((t.waba_id.clone(), t.name.clone(), t.language.clone())));
    let mut sandbox_settings = crate::app::sandbox_settings_for(&s, None);
    sandbox_settings.templates = templates.clone();
    let (flow, problems) = read_and_check(file, Some(&templates))?;
    let Some(flow) = flow.filter(|_| problems.is_empty()) else {
        for p in &problems {
            println!("{}", located(file, p));
        }
        println!("the flow has problems: fix them first (`ringback flows check`)");
        return Ok(false);
    };
    let trigger: serde_json::Value = match &a.event {
        Some(path) => {
            let raw = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            serde_json::from_str(&raw)
                .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))?
        }
        None => serde_json::json!({}),
    };
    let phone = a.contact.clone().or_else(|| {
        [
            "/call/caller",
            "/phone",
            "/contact/phone",
            "/customer/phone",
        ]
        .iter()
        .find_map(|p| {
            trigger
                .pointer(p)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
    });
    let contact = serde_json::json!({"phone": phone, "name": a.name});
    let mut canned = std::collections::HashMap::new();
    for r in &a.respond {
        let (step, json) = r
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--respond {r}: write STEP=JSON"))?;
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| anyhow::anyhow!("--respond {step}: the answer is not JSON: {e}"))?;
        canned.insert(step.to_string(), value);
    }
    let start = match &a.at {
        Some(t) => t
            .parse::<jiff::Timestamp>()
            .map_err(|e| {
                anyhow::anyhow!("--at {t}: {e}; write RFC 3339, e.g. 2026-12-24T09:00:00Z")
            })?
            .as_millisecond(),
        None => crate::time::now_ms(),
    };

    let (stop, shutdown) = crate::shutdown::channel();
    let sandbox = crate::sandbox::Sandbox::start(sandbox_settings, shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(sandbox.clone().serve(listener, shutdown));
    let base = crate::flows::render::Context::new(
        [
            ("flow", serde_json::json!({"name": flow.name})),
            ("run", serde_json::json!({"id": "trial"})),
            ("now", serde_json::json!(crate::time::display(start))),
        ],
        std::env::vars(),
    );
    let sender = s
        .senders
        .first()
        .ok_or_else(|| anyhow::anyhow!("the configuration has no [[senders]]"))?;
    // The business's zone: the one its hours are kept in.
    let zone = s.timezone.clone();
    // Assistants answer as in the server (their model, their knowledge), remembering into a
    // store that ends with the trial.
    let scratch = tempfile::tempdir()?;
    let scratch_store = crate::store::open(&format!(
        "sqlite://{}",
        scratch.path().join("trial.db").display()
    ))
    .await?;
    let assistants = crate::assistants::Assistants::from_settings(
        &s.assistants,
        scratch_store,
        reqwest::Client::new(),
    );
    let mut trial = crate::flows::trial::Trial {
        engine: crate::flows::engine::Engine {
            flow: &flow,
            base: &base,
            zone,
        },
        sender,
        registry: crate::template_registry::Registry::from_templates(templates),
        client: crate::cloud_api::Client::new(
            &format!("http://{addr}"),
            &s.api_version,
            std::time::Duration::from_secs(10),
        ),
        sandbox,
        canned,
        assistants,
        replies: a.replies,
        window_open: a.window_open,
        http_timeout: std::time::Duration::from_secs(10),
    };
    println!(
        "flow '{}' ({}), on {} — a sandbox at http://{addr}, the clock simulated from {}",
        flow.name,
        file.display(),
        flow.trigger.on,
        crate::time::display(start)
    );
    let report = trial
        .run(trigger, contact, start, |l| {
            println!(
                "+{:<9} {} ({})",
                crate::flows::trial::span(l.after),
                l.step,
                l.kind
            );
            if let Some(input) = &l.input {
                println!("            in  {input}");
            }
            println!("            {}", l.outcome);
        })
        .await;
    stop.fire();
    let _ = server.await;
    let simulated = crate::flows::trial::span(report.simulated);
    Ok(match report.end {
        crate::flows::engine::Next::Failed { step, error } => {
            println!("failed at step '{step}': {error} (after {simulated}, simulated)");
            false
        }
        _ => {
            println!(
                "done after {simulated} (simulated): {} message(s) sent to the sandbox",
                report.sent
            );
            true
        }
    })
}

/// Reads and checks one file.
pub fn check_file(file: &Path, templates: Option<&[Template]>) -> anyhow::Result<Vec<Problem>> {
    Ok(read_and_check(file, templates)?.1)
}

/// Reads one file and checks it: the flow (when it could be read) and its problems.
fn read_and_check(
    file: &Path,
    templates: Option<&[Template]>,
) -> anyhow::Result<(Option<Flow>, Vec<Problem>)> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(match definition::parse(&text, &stem) {
        Ok(flow) => {
            let problems = check_flow(&flow, templates);
            (Some(flow), problems)
        }
        Err(e) => (None, vec![e.into()]),
    })
}

pub use crate::flows::catalog::located;

/// The `*.toml` files named or inside the directories named, sorted.
fn flow_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let inside = crate::flows::catalog::files_in(p)
                .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", p.display()))?;
            files.extend(inside);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            anyhow::bail!(
                "{} does not exist: name flow files (*.toml) or a directory of them",
                p.display()
            );
        }
    }
    if files.is_empty() {
        anyhow::bail!("no flow files (*.toml) in {paths:?}");
    }
    Ok(files)
}

/// The templates a send could use: synced ones in the store, the configuration's declared
/// ones, and, when the sandbox stands in for the Cloud API, the sandbox's own (what `serve`
/// would sync from it).
async fn registry(cli: &Cli) -> anyhow::Result<Vec<Template>> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    Ok(crate::flows::catalog::known_templates(store.as_ref(), &s).await?)
}
