//! `ringback events …`: inbound events the processor set aside as dead, and putting them back.

use clap::Subcommand;

use super::{Cli, load};

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// List dead-lettered events (unreadable or unprocessable), oldest first, with the reason.
    Dead {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead-lettered event (or all of them) back to be processed, once its cause is
    /// fixed. A running server picks it up within seconds.
    Retry {
        /// The event id, as `ringback events dead` shows it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every dead-lettered event.
        #[arg(long)]
        all: bool,
    },
}

pub async fn run(cli: &Cli, cmd: &EventsCommand) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    match cmd {
        EventsCommand::Dead { json } => {
            let dead = store.dead_events().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&dead)?);
                return Ok(());
            }
            if dead.is_empty() {
                println!("no dead-lettered events");
                return Ok(());
            }
            println!("{:<8} {:<9} {:<26} REASON", "ID", "SOURCE", "RECEIVED");
            for e in dead {
                println!(
                    "{:<8} {:<9} {:<26} {}",
                    e.id,
                    e.source,
                    crate::time::display(e.received_at),
                    e.reason
                );
            }
        }
        EventsCommand::Retry { id, all } => {
            let n = store.retry_dead(if *all { None } else { *id }).await?;
            match id {
                Some(id) if !*all => {
                    anyhow::ensure!(n == 1, "no dead-lettered event with id {id}");
                    println!("event {id} is queued for processing again");
                }
                _ => println!("{n} event(s) queued for processing again"),
            }
        }
    }
    Ok(())
}
