//! `ringback webhooks …`: endpoints that receive events, their deliveries, and replays.

use clap::Subcommand;

use super::{Cli, load};
use crate::outbound_webhooks::{self, EndpointInput};
use crate::store::DeliveryQuery;
use crate::time::{display, now_ms};

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Register an endpoint; prints its signing secret (whsec_…) once.
    ///
    /// Example: ringback webhooks add --url https://crm.example.com/hooks/ringback --events conversation.ended,call.missed
    Add {
        #[arg(long)]
        url: String,
        /// Comma-separated event types (all when absent); `ringback webhooks events` lists them.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// The registered endpoints.
    List,
    /// The event types an endpoint can subscribe to.
    Events,
    /// Remove an endpoint (its pending deliveries go with it).
    Remove { id: String },
    /// Enable an endpoint again after it was disabled for failing.
    Enable { id: String },
    /// A new secret; the old one keeps signing alongside it for a day.
    RotateSecret { id: String },
    /// The delivery log, newest first; with an id, one delivery and every attempt.
    Deliveries {
        id: Option<i64>,
        #[arg(long)]
        endpoint: Option<String>,
        /// pending, delivered or failed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Deliver again: one delivery by id, or every event of a time range to one endpoint.
    Replay {
        #[arg(required_unless_present = "endpoint")]
        id: Option<i64>,
        #[arg(long, requires = "from")]
        endpoint: Option<String>,
        /// RFC 3339 time (2026-12-01T09:00:00Z) or unix milliseconds.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

fn time(field: &str, v: &str) -> anyhow::Result<i64> {
    crate::time::parse(v).map_err(|e| anyhow::anyhow!("--{field} {e}"))
}

pub async fn run(cli: &Cli, cmd: &WebhooksCommand) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    if let WebhooksCommand::Events = cmd {
        for t in crate::events::TYPES {
            println!("{t}");
        }
        return Ok(());
    }
    let store = crate::store::open(&s.store_url).await?;
    match cmd {
        WebhooksCommand::Events => {}
        WebhooksCommand::Add {
            url,
            events,
            description,
        } => {
            let input = EndpointInput {
                url: url.clone(),
                description: description.clone(),
                event_types: events.clone(),
            };
            outbound_webhooks::check(&input, s.outbound_webhooks.allow_private_addresses)
                .await
                .map_err(anyhow::Error::msg)?;
            let e = outbound_webhooks::new_endpoint(input, now_ms());
            store.create_endpoint(&e).await?;
            println!(
                "endpoint {} receives {}",
                e.id,
                if e.event_types.is_empty() {
                    "every event".to_string()
                } else {
                    e.event_types.join(", ")
                }
            );
            println!(
                "signing secret (shown once; verify with any Standard Webhooks library): {}",
                e.secret
            );
        }
        WebhooksCommand::List => {
            let all = store.endpoints().await?;
            if all.is_empty() {
                println!("no endpoints; add one with `ringback webhooks add --url …`");
            }
            for e in all {
                let state = if e.enabled {
                    "enabled".to_string()
                } else {
                    format!("disabled: {}", e.disabled_reason.unwrap_or_default())
                };
                let events = if e.event_types.is_empty() {
                    "*".to_string()
                } else {
                    e.event_types.join(",")
                };
                println!("{}  {}  [{events}]  {state}", e.id, e.url);
            }
        }
        WebhooksCommand::Remove { id } => {
            anyhow::ensure!(store.delete_endpoint(id).await?, "no endpoint with id {id}");
            println!("endpoint {id} removed");
        }
        WebhooksCommand::Enable { id } => {
            let mut e = store
                .endpoint(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no endpoint with id {id}"))?;
            e.enabled = true;
            e.disabled_reason = None;
            e.failing_since = None;
            store.update_endpoint(&e).await?;
            println!("endpoint {id} enabled");
        }
        WebhooksCommand::RotateSecret { id } => {
            let mut e = store
                .endpoint(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no endpoint with id {id}"))?;
            outbound_webhooks::rotate(&mut e, now_ms());
            store.update_endpoint(&e).await?;
            println!("new secret: {}", e.secret);
            println!(
                "the previous secret signs too until {}",
                display(e.previous_until.unwrap_or_default())
            );
        }
        WebhooksCommand::Deliveries { id: Some(id), .. } => {
            let (d, attempts) = store
                .delivery(*id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no delivery with id {id}"))?;
            println!(
                "delivery {} of event {} ({}) to {}: {} after {} attempt(s)",
                d.id, d.event_id, d.event_type, d.endpoint_id, d.state, d.attempts
            );
            for a in attempts {
                let status = a.status.map_or("-".to_string(), |s| s.to_string());
                println!(
                    "  #{} {} status {status} in {} ms {}{}",
                    a.attempt_no,
                    display(a.at),
                    a.latency_ms,
                    a.error.unwrap_or_default(),
                    if a.response.is_empty() {
                        String::new()
                    } else {
                        format!(" answer: {}", a.response)
                    }
                );
            }
        }
        WebhooksCommand::Deliveries {
            id: None,
            endpoint,
            state,
            limit,
        } => {
            let rows = store
                .deliveries(&DeliveryQuery {
                    endpoint_id: endpoint.clone(),
                    state: state.clone(),
                    before_id: None,
                    limit: *limit,
                })
                .await?;
            println!(
                "{:<8} {:<38} {:<8} {:<24} {:<10} {:>8} LAST",
                "ID", "ENDPOINT", "EVENT", "TYPE", "STATE", "ATTEMPTS"
            );
            for d in rows {
                let last = d
                    .last_status
                    .map(|s| s.to_string())
                    .or(d.last_error)
                    .unwrap_or_default();
                println!(
                    "{:<8} {:<38} {:<8} {:<24} {:<10} {:>8} {last}",
                    d.id, d.endpoint_id, d.event_id, d.event_type, d.state, d.attempts
                );
            }
        }
        WebhooksCommand::Replay {
            id,
            endpoint,
            from,
            to,
        } => {
            let n = match (id, endpoint) {
                (Some(id), _) => store.replay(Some(*id), None, None, now_ms()).await?,
                (None, Some(ep)) => {
                    let from = time("from", from.as_deref().unwrap_or("0"))?;
                    let to = to
                        .as_deref()
                        .map(|t| time("to", t))
                        .transpose()?
                        .unwrap_or(i64::MAX);
                    store
                        .replay(None, Some(ep), Some((from, to)), now_ms())
                        .await?
                }
                (None, None) => 0,
            };
            println!("{n} delivery(ies) queued again; a running server sends them within a second");
        }
    }
    Ok(())
}
