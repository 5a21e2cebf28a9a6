//! Wiring: builds every part from [`Settings`] and runs them until shutdown.
//!
//! The server never binds ports or installs signal handlers itself: callers pass listeners
//! and a shutdown signal (the CLI binds configured addresses and listens for Ctrl-C; tests
//! bind `127.0.0.1:0` and fire the trigger).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::cloud_api::Client;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::inbound::generic::GenericSource;
use crate::inbound::twilio::TwilioSource;
use crate::inbound::whatsapp::WhatsAppSource;
use crate::ingestor::Ingestor;
use crate::outbox::{Holds, Lane, Pacer, Wakers, run_maintenance};
use crate::processor::Processor;
use crate::retry::RetryPolicy;
use crate::sandbox::{Sandbox, SandboxNumber, SandboxSettings};
use crate::shutdown::{self, Trigger};
use crate::store::{self, Store};
use crate::template_registry::{Registry, run_sync};

/// A started server: where it listens and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub sandbox_addr: Option<SocketAddr>,
    pub sandbox: Option<Sandbox>,
    pub store: Arc<dyn Store>,
    pub lanes: Vec<Lane>,
    /// Where the SIP missed-call number listens, when `[sip]` is enabled.
    pub sip_udp: Option<SocketAddr>,
    pub sip_tcp: Option<SocketAddr>,
    /// The token of the console's one-time first-admin link, when `serve` offers one.
    pub setup_token: Option<String>,
    trigger: Trigger,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops accepting work, lets in-flight sends finish, and waits for every task.
    pub async fn stop(mut self) {
        self.trigger.fire();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Waits until every task ends (after `shutdown` fires).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// The trigger, to stop from elsewhere.
    pub fn trigger(&self) -> Trigger {
        self.trigger.clone()
    }
}

/// Sandbox settings mirroring the configured senders, posting webhooks to `webhook_url`.
pub fn sandbox_settings_for(settings: &Settings, webhook_url: Option<String>) -> SandboxSettings {
    let numbers: Vec<SandboxNumber> = settings
        .senders
        .iter()
        .map(|s| SandboxNumber {
            phone_number_id: s.phone_number_id.clone(),
            waba_id: s.waba_id.clone(),
            display_number: s.display_number.digits().to_string(),
            access_token: s.access_token.clone(),
        })
        .collect();
    let mut sb = SandboxSettings::demo(numbers, webhook_url, settings.app_secret.clone());
    sb.statuses = settings.sandbox.statuses;
    sb.status_delay = Duration::from_millis(settings.sandbox.status_delay_ms);
    sb.read_probability = settings.sandbox.read_probability;
    sb.undeliverable_probability = settings.sandbox.undeliverable_probability;
    sb.webhook_batch = settings.sandbox.webhook_batch.max(1);
    sb.limits.enabled = settings.sandbox.limits;
    sb.limits.throughput_per_second = settings.sandbox.throughput_per_second;
    sb.api_versions = vec![settings.api_version.clone()];
    sb.keep = settings.sandbox.keep;
    sb
}

/// Starts everything. `sandbox_listener` is used when `settings.api_base` is `None`.
pub async fn start(
    settings: Settings,
    listener: TcpListener,
    sandbox_listener: Option<TcpListener>,
) -> anyhow::Result<Running> {
    let settings = Arc::new(settings);
    let (trigger, shutdown) = shutdown::channel();
    let mut tasks = JoinSet::new();
    let addr = listener.local_addr()?;

    // The phone-number metadata takes ~100 ms to load on first use; load it now rather than
    // on the first missed call.
    let region = settings.default_region;
    tokio::task::spawn_blocking(move || {
        crate::phone::PhoneE164::from_caller_id("+14155552671", region)
    })
    .await?
    .ok();
    let store = store::open(&settings.store_url).await?;
    let node = crate::cluster::Node::new(&settings, addr);
    // Before any worker starts, so no early metric is lost; every series carries the node.
    let prometheus = crate::telemetry::prometheus_for(&node.id);
    tasks.spawn(crate::cluster::heartbeat(
        store.clone(),
        node.clone(),
        shutdown.clone(),
    ));

    let (api_base, sandbox, sandbox_addr) = match (&settings.api_base, sandbox_listener) {
        (Some(base), _) => (base.clone(), None, None),
        (None, Some(l)) => {
            let sandbox_addr = l.local_addr()?;
            let webhook = format!("http://{addr}/webhooks/whatsapp");
            let sb = Sandbox::start(
                sandbox_settings_for(&settings, Some(webhook)),
                shutdown.clone(),
            );
            tasks.spawn(log_exit(
                "sandbox",
                sb.clone()
                    .serve_with(l, settings.http_timeouts, shutdown.clone()),
            ));
            (
                format!("http://{sandbox_addr}"),
                Some(sb),
                Some(sandbox_addr),
            )
        }
        (None, None) => anyhow::bail!("no whatsapp.api_base and no sandbox listener"),
    };

    let client = Client::new(&api_base, &settings.api_version, settings.request_timeout);
    let wakers = Wakers::new(settings.senders.iter().map(|s| s.phone_number_id.clone()));
    let policy = RetryPolicy {
        delays_ms: settings.outbox.retry_delays_ms.clone(),
        max_attempts: settings.outbox.max_attempts,
    };
    let templates = Registry::load(store.as_ref(), settings.templates.clone()).await?;
    tasks.spawn(run_sync(
        templates.clone(),
        store.clone(),
        client.clone(),
        settings.senders.clone(),
        Duration::from_secs(settings.template_sync_seconds),
        shutdown.clone(),
    ));
    let pacer = Pacer::new(
        settings.senders.iter().map(|s| s.phone_number_id.clone()),
        settings.outbox.throughput_per_second,
    );
    let holds = Holds::default();
    let configured_limit = crate::outbox::holds::tier_limit(&settings.outbox.messaging_tier);
    for s in &settings.senders {
        holds.update(&s.phone_number_id, |r| r.limit = configured_limit);
    }
    for n in store.numbers().await? {
        if let Some(rate) = n.throughput {
            pacer.set_rate(&n.phone_number_id, rate);
        }
        holds.update(&n.phone_number_id, |r| {
            r.status = n.status.clone();
            r.quality_rating = n.quality_rating.clone();
            if let Some(limit) = n
                .messaging_tier
                .as_deref()
                .and_then(crate::outbox::holds::tier_limit)
            {
                r.limit = Some(limit);
            }
        });
    }
    let sender_status = crate::sender_status::SenderStatus::new(Duration::from_secs(
        settings.outbox.offline_probe_seconds,
    ));
    for n in store.numbers().await? {
        if let Some(status) = &n.status {
            // What Meta said last, before this start: no event, the change was published then.
            let _ = sender_status.after_meta_status(&n.phone_number_id, status);
        }
    }
    let lanes: Vec<Lane> = settings
        .senders
        .iter()
        .map(|s| Lane {
            sender: s.clone(),
            store: store.clone(),
            client: client.clone(),
            policy: policy.clone(),
            permits: Arc::new(Semaphore::new(settings.outbox.concurrency)),
            wake: wakers.get(&s.phone_number_id),
            door: wakers.door(&s.phone_number_id),
            pacer: pacer.clone(),
            holds: holds.clone(),
            templates: templates.clone(),
            node: node.clone(),
            sender_status: sender_status.clone(),
            offline_probe: Duration::from_secs(settings.outbox.offline_probe_seconds),
        })
        .collect();

    let book = crate::calling::PermissionBook::new(store.clone(), settings.calling.limits());
    crate::calling::settings::apply_at_start(&settings, &client).await;
    let committed = Arc::new(Notify::new());
    let ingestor = Ingestor::start(store.clone(), committed.clone());
    let processor = Processor {
        store: store.clone(),
        settings: settings.clone(),
        wake: committed,
        outbox: wakers.clone(),
        pacer: pacer.clone(),
        templates: templates.clone(),
        holds: holds.clone(),
        sender_status: sender_status.clone(),
        book: book.clone(),
        rejecter: crate::calling::rejecter::Rejecter::new(
            client.clone(),
            ingestor.clone(),
            settings.calling.reject_after_seconds,
        ),
        fence: None,
        poll: node.poll,
    };
    // The last published event id: the event stream, the webhook dispatcher and the flows'
    // trigger follower follow it.
    let (published, _) = tokio::sync::watch::channel(0_i64);
    let flows = crate::flows::Flows {
        store: store.clone(),
        catalog: crate::flows::catalog::Catalog::new(store.clone(), settings.flows.env.clone()),
        wake: Arc::new(Notify::new()),
    };
    // Flows are checked against the templates Meta has: on a first start the store has none
    // yet, so the registry is synced once before the flow files are read.
    if !crate::flows::catalog::files_in(&settings.flows.dir)
        .unwrap_or_default()
        .is_empty()
        && let Err(e) = templates
            .sync(store.as_ref(), &client, &settings.senders)
            .await
    {
        tracing::warn!(error.message = %e, "Template sync failed; flows are checked against the last known templates.");
    }
    let known = crate::flows::catalog::known_templates(store.as_ref(), &settings).await?;
    let loaded = crate::flows::catalog::load_dir(
        &flows.catalog,
        &settings.flows.dir,
        &known,
        crate::time::now_ms(),
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    if loaded > 0 {
        tracing::info!(count = loaded, dir = %settings.flows.dir.display(), "Flows loaded.");
    }
    let assistants = crate::assistants::Assistants::from_settings(
        &settings.assistants,
        store.clone(),
        reqwest::Client::new(),
    );
    let flow_runner = crate::flows::runner::Runner {
        store: store.clone(),
        catalog: flows.catalog.clone(),
        actions: crate::flows::actions::Actions {
            store: store.clone(),
            settings: settings.clone(),
            templates: templates.clone(),
            wakers: wakers.clone(),
            sender_status: sender_status.clone(),
            book: book.clone(),
            http: reqwest::Client::new(),
            assistants: assistants.clone(),
        },
        wake: flows.wake.clone(),
        env: Arc::new(settings.flows.env.clone()),
    };
    let tracker = crate::conversation::tracker::Tracker {
        store: store.clone(),
        settings: settings.clone(),
        published: published.clone(),
        fence: None,
    };
    let dispatcher = crate::outbound_webhooks::Dispatcher::new(
        store.clone(),
        settings.outbound_webhooks.clone(),
        published.clone(),
    );
    let auto_reply = crate::assistants::auto_reply::AutoReply {
        store: store.clone(),
        assistants: assistants.clone(),
        settings: settings.clone(),
        templates: templates.clone(),
        book: book.clone(),
        wakers: wakers.clone(),
        published: published.clone(),
    };
    let evaluator = crate::assistants::evaluate::Evaluator {
        store: store.clone(),
        assistants: assistants.clone(),
        published: published.clone(),
    };
    tasks.spawn(leader(
        Leader {
            store: store.clone(),
            node: node.clone(),
            processor,
            tracker,
            dispatcher,
            flows: flows.clone(),
            flow_runner,
            auto_reply,
            evaluator,
            lanes: lanes.clone(),
            resend_after: Duration::from_secs(settings.outbox.uncertain_resend_after_seconds),
            max_attempts: settings.outbox.max_attempts,
            wakers: wakers.clone(),
            holds: holds.clone(),
            retention: settings.retention.clone(),
        },
        shutdown.clone(),
    ));

    let telephony = crate::telephony::start(
        &settings,
        crate::telephony::CallSink::new(
            ingestor.clone(),
            crate::telephony::spool::Spool::open(settings.call_spool.clone()),
        ),
        shutdown.clone(),
        &mut tasks,
    )
    .await?;

    // While no one can sign in to the console, a server on loopback offers a one-time link
    // that creates the first admin (only someone at this machine's terminal sees it).
    let setup = crate::users::SetupLink::default();
    let setup_token = (settings.console.enabled
        && settings.listen.ip().is_loopback()
        && store.users().await?.is_empty())
    .then(|| setup.issue());
    let state = AppState::new(crate::http::Shared {
        whatsapp: WhatsAppSource::new(
            settings.app_secret.clone(),
            settings.verify_token.clone(),
            settings.senders.iter().map(|s| s.phone_number_id.clone()),
        ),
        twilio: settings.twilio_auth_token.clone().map(|t| {
            TwilioSource::new(
                t,
                settings.twilio_forward_to.clone(),
                settings.twilio_dial_timeout,
            )
        }),
        generic: GenericSource::new(settings.calls_secret.clone()),
        settings: settings.clone(),
        store: store.clone(),
        ingestor,
        wakers,
        pacer: pacer.clone(),
        templates,
        prometheus,
        book: book.clone(),
        client: client.clone(),
        node: node.clone(),
        published,
        sender_status,
        flows,
        assistants,
        sessions: crate::users::Sessions::new(settings.console.session_lifetime),
        setup: setup.clone(),
        link_clicks: crate::http::short_link::click_limiter(),
    });
    let router = http::router(state);
    tasks.spawn(log_exit(
        "http",
        http::serve::serve(listener, router, settings.http_timeouts, shutdown.clone()),
    ));
    tracing::info!(%addr, sandbox = ?sandbox_addr, store = %crate::config::redact::url(&settings.store_url), "Ringback is running.");
    Ok(Running {
        addr,
        sandbox_addr,
        sandbox,
        store,
        lanes,
        sip_udp: telephony.sip.udp,
        sip_tcp: telephony.sip.tcp,
        setup_token,
        trigger,
        tasks,
    })
}

/// The work one node at a time does for the whole cluster (see [`crate::cluster`]).
struct Leader {
    store: Arc<dyn crate::store::Store>,
    node: crate::cluster::Node,
    processor: Processor,
    /// Publishes journaled facts as events, in order (see [`crate::conversation::tracker`]).
    tracker: crate::conversation::tracker::Tracker,
    /// Delivers events to the registered webhook endpoints.
    dispatcher: crate::outbound_webhooks::Dispatcher,
    /// Flows: runs started from events and schedules, and taken up when due.
    flows: crate::flows::Flows,
    flow_runner: crate::flows::runner::Runner,
    /// Assistants answering the numbers they are given.
    auto_reply: crate::assistants::auto_reply::AutoReply,
    /// Assistants extracting variables from conversations that ended.
    evaluator: crate::assistants::evaluate::Evaluator,
    lanes: Vec<Lane>,
    resend_after: Duration,
    /// Attempts after which an unanswered send is given up (see `requeue_uncertain`).
    max_attempts: u32,
    wakers: crate::outbox::Wakers,
    holds: crate::outbox::Holds,
    retention: crate::config::retention::RetentionSettings,
}

/// Runs the processor, the outbox lanes, the outbox maintenance and retention on this node
/// for as long as it holds the leader lease.
async fn leader(l: Leader, shutdown: crate::shutdown::Shutdown) {
    let (store, node) = (l.store.clone(), l.node.clone());
    crate::cluster::while_held(store, node, crate::cluster::LEADER, shutdown, |fence, term| {
        let l = &l;
        async move {
            // Sends the previous leader (or this node, before a restart) left in flight.
            match l
                .store
                .mark_in_flight_uncertain(Some(&l.node.id), crate::time::now_ms())
                .await
            {
                Ok(n) if n > 0 => tracing::warn!(
                    count = n,
                    "Sends were in flight when their node stopped; they wait for a status webhook before being sent again."
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error.message = %e, "Could not take over sends left in flight."),
            }
            let processor = Processor {
                fence: Some(fence.clone()),
                ..l.processor.clone()
            };
            let tracker = crate::conversation::tracker::Tracker {
                fence: Some(fence.clone()),
                ..l.tracker.clone()
            };
            let mut work = JoinSet::new();
            work.spawn(processor.run(term.clone()));
            work.spawn(tracker.run(term.clone()));
            work.spawn(l.dispatcher.clone().run(term.clone()));
            work.spawn(l.flow_runner.clone().run(term.clone()));
            work.spawn(l.auto_reply.clone().run(term.clone()));
            work.spawn(l.evaluator.clone().run(term.clone()));
            work.spawn(
                crate::flows::follower::Follower {
                    store: l.store.clone(),
                    catalog: l.flows.catalog.clone(),
                    published: l.tracker.published.clone(),
                    wake: l.flows.wake.clone(),
                }
                .run(term.clone()),
            );
            work.spawn(
                crate::flows::follower::Schedules {
                    store: l.store.clone(),
                    catalog: l.flows.catalog.clone(),
                    wake: l.flows.wake.clone(),
                }
                .run(term.clone()),
            );
            for lane in &l.lanes {
                work.spawn(lane.clone().run(term.clone()));
            }
            work.spawn(run_maintenance(
                l.store.clone(),
                l.resend_after,
                l.max_attempts,
                l.wakers.clone(),
                l.holds.clone(),
                l.lanes
                    .iter()
                    .map(|lane| lane.sender.phone_number_id.clone())
                    .collect(),
                term.clone(),
            ));
            work.spawn(crate::retention::run(
                l.store.clone(),
                l.retention.clone(),
                term.clone(),
            ));
            while work.join_next().await.is_some() {}
        }
    })
    .await
}

async fn log_exit(name: &'static str, fut: impl Future<Output = std::io::Result<()>>) {
    if let Err(e) = fut.await {
        tracing::error!(server = name, error.message = %e, "Server stopped with an error.");
    }
}

/// What `serve` prints so a person knows what to do next.
pub fn banner(settings: &Settings, running: &Running) -> String {
    let mut out = banner_for(settings, running.addr, running.sandbox_addr);
    out += &console_banner(settings, running.addr, running.setup_token.as_deref());
    out
}

/// Where the console is, and how to get in.
fn console_banner(settings: &Settings, addr: SocketAddr, setup_token: Option<&str>) -> String {
    if !settings.console.enabled {
        return String::new();
    }
    let base = format!("http://{addr}");
    match setup_token {
        // The one secret the banner shows: it is the purpose of the line, it works once, only
        // while no user exists, and only on a loopback server.
        Some(token) => format!(
            "\nConsole: {base}/ — no one can sign in yet. Create the first admin (this link works once):\n  {base}/setup?token={token}\n"
        ),
        None => format!("\nConsole: {base}/ (sign in with a user from `ringback users create`)\n"),
    }
}

/// The banner for a server on `addr` (and the sandbox on `sandbox_addr`, if it runs).
fn banner_for(settings: &Settings, addr: SocketAddr, sandbox_addr: Option<SocketAddr>) -> String {
    let base = format!("http://{addr}");
    let mut out = format!("Ringback is listening on {base}\n");
    match sandbox_addr {
        Some(sb) => {
            out += &format!(
                "WhatsApp endpoint: the built-in Cloud API sandbox at http://{sb} (no Meta account needed)\n"
            )
        }
        None => {
            out += &format!(
                "WhatsApp endpoint: {}\n",
                settings.api_base.as_deref().unwrap_or("?")
            )
        }
    }
    out += &format!(
        "Store: {}\n",
        crate::config::redact::url(&settings.store_url)
    );
    out += &format!(
        "\nTry a missed call:\n  ringback simulate call --from \"+91 98765 43210\" --status no-answer\n\
         or, with curl:\n  body='{{\"call_id\":\"demo-1\",\"from\":\"+919876543210\",\"to\":\"{}\",\"status\":\"no-answer\"}}'\n  \
         curl -X POST {base}/webhooks/calls -H 'Content-Type: application/json' \\\n    \
         -H \"X-Ringback-Signature: sha256=$(printf %s \"$body\" | openssl dgst -sha256 -hmac '{}' | sed 's/^.* //')\" -d \"$body\"\n\
         Then see it:\n  ringback messages\n  curl {base}/api/v1/messages\n",
        settings.senders[0].display_number,
        // Only the public demo value may be shown: printing a real secret would put it in
        // terminal scrollback and service logs.
        if crate::config::is_demo_secret(&settings.calls_secret) {
            settings.calls_secret.expose_secret()
        } else {
            "<calls.secret>"
        },
    );
    if settings.demo_secrets {
        out += "\nNote: demo secrets are in use. Set real ones before exposing this server (see `ringback config example`).\n";
    }
    out
}

/// Shutdown on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests;
