//! `ringback flows runs | run | cancel | rerun`: the server's flow runs, read and changed in
//! its store (the same domain code as `/api/v1/flow-runs`).

use std::sync::Arc;

use super::{Cli, load};
use crate::flows::Flows;
use crate::store::{RunQuery, RunRow};
use crate::time::{display, now_ms};

async fn flows(cli: &Cli) -> anyhow::Result<Flows> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    Ok(Flows {
        catalog: crate::flows::catalog::Catalog::new(store.clone(), s.flows.env.clone()),
        store,
        wake: Arc::new(tokio::sync::Notify::new()),
    })
}

fn row_line(r: &RunRow) -> String {
    format!(
        "{:<36} {:<24} {:<15} {:<16} {}{}",
        r.id,
        r.flow,
        r.status,
        r.contact.as_deref().unwrap_or("-"),
        display(r.created_at),
        r.error
            .as_deref()
            .map(|e| format!("  {e}"))
            .unwrap_or_default()
    )
}

pub async fn list(
    cli: &Cli,
    flow: Option<String>,
    status: Option<String>,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let f = flows(cli).await?;
    let rows = f
        .store
        .runs(&RunQuery {
            flow,
            status,
            before: None,
            limit: limit.clamp(1, 10_000),
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no runs");
        return Ok(());
    }
    println!(
        "{:<36} {:<24} {:<15} {:<16} started",
        "run", "flow", "status", "customer"
    );
    for r in &rows {
        println!("{}", row_line(r));
    }
    Ok(())
}

pub async fn show(cli: &Cli, id: &str, json: bool) -> anyhow::Result<()> {
    let f = flows(cli).await?;
    let run = f.run(id).await?;
    let timeline = f.store.run_timeline(id).await?;
    if json {
        let mut v = serde_json::to_value(&run)?;
        v["timeline"] = serde_json::to_value(&timeline)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{}", row_line(&run));
    if let Some(due) = run.due_at {
        println!("due {}", display(due));
    }
    for l in &timeline {
        let key = l
            .action_key
            .as_deref()
            .map(|k| format!(" [{k}]"))
            .unwrap_or_default();
        println!("{} {} ({}){key}", display(l.at), l.step, l.kind);
        if let Some(i) = &l.input {
            println!("    in  {i}");
        }
        if let Some(o) = &l.output {
            println!("    out {o}");
        }
        if let Some(e) = &l.error {
            println!("    ✗ {e}");
        }
    }
    Ok(())
}

pub async fn cancel(cli: &Cli, id: &str) -> anyhow::Result<()> {
    let run = flows(cli).await?.cancel(id, now_ms()).await?;
    println!("{}", row_line(&run));
    Ok(())
}

pub async fn rerun(cli: &Cli, id: &str) -> anyhow::Result<()> {
    let run = flows(cli).await?.rerun(id, now_ms()).await?;
    println!("{}", row_line(&run));
    Ok(())
}
