//! `ringback cluster`: the nodes sharing this store, who leads, and each number's lane.

use clap::Args;

use super::{Cli, load};
use crate::time::now_ms;

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: &Cli, args: &ClusterArgs) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    let (nodes, leases, lanes) = (
        store.nodes().await?,
        store.leases().await?,
        store.lanes().await?,
    );
    let now = now_ms();
    // A node is alive while its heartbeat (every third of a lease) is younger than a lease.
    let lease_ms = i64::try_from(s.cluster.lease.as_millis()).unwrap_or(i64::MAX);
    let alive = |last_seen: i64| now - last_seen < lease_ms;
    if args.json {
        let nodes: Vec<_> = nodes
            .iter()
            .map(|n| {
                let mut v = serde_json::to_value(n).unwrap_or_default();
                v["alive"] = alive(n.last_seen).into();
                v
            })
            .collect();
        let out = serde_json::json!({"nodes": nodes, "leases": leases, "lanes": lanes});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("NODES");
    if nodes.is_empty() {
        println!("  none has run on this store yet");
    }
    for n in &nodes {
        println!(
            "  {:<28} {:<22} {:<6} last seen {} ago, up since {}",
            n.id,
            n.address.as_deref().unwrap_or("-"),
            if alive(n.last_seen) { "alive" } else { "gone" },
            ago(now - n.last_seen),
            crate::time::display(n.started_at),
        );
    }
    println!("LEASES");
    if leases.is_empty() {
        println!("  none taken yet");
    }
    for l in &leases {
        let state = if l.expires_at > now {
            format!("held for {} more", ago(l.expires_at - now))
        } else {
            "lapsed (free to take)".to_string()
        };
        println!(
            "  {:<12} {:<28} token {:<6} {state}",
            l.name, l.holder, l.token
        );
    }
    println!("LANES (run by the leader)");
    if lanes.is_empty() {
        println!("  nothing queued, sending or uncertain");
    }
    for l in &lanes {
        println!(
            "  {:<20} queued {:<7} sending {:<5} uncertain {:<5} claimed by {}",
            l.sender_id,
            l.queued,
            l.sending,
            l.uncertain,
            if l.claimed_by.is_empty() {
                "-".to_string()
            } else {
                l.claimed_by.join(", ")
            }
        );
    }
    Ok(())
}

fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}
