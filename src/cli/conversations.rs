//! `ringback conversations …`: conversations with their transcripts, and closing one.

use clap::{Args, Subcommand};

use super::{Cli, load};
use crate::events::Fact;
use crate::store::ConversationQuery;
use crate::time::display;

#[derive(Args, Debug)]
pub struct ConversationsArgs {
    #[command(subcommand)]
    pub command: Option<ConversationsCommand>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Args, Debug, Default)]
pub struct ListArgs {
    /// Only `open` or only `ended` conversations.
    #[arg(long)]
    pub state: Option<String>,
    /// Only this sending number (phone_number_id).
    #[arg(long)]
    pub number: Option<String>,
    /// Only this customer (phone number or bsuid:…).
    #[arg(long)]
    pub contact: Option<String>,
    /// How many, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConversationsCommand {
    /// One conversation with its whole transcript.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// End an open conversation now (`conversation.ended` follows, as for any end).
    Close { id: String },
}

pub async fn run(cli: &Cli, args: &ConversationsArgs) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    match &args.command {
        None => {
            let l = &args.list;
            let open = match l.state.as_deref() {
                None => None,
                Some("open") => Some(true),
                Some("ended") => Some(false),
                Some(other) => anyhow::bail!("--state {other}: use open or ended"),
            };
            let rows = store
                .conversations(&ConversationQuery {
                    open,
                    sender_id: l.number.clone(),
                    contact: l
                        .contact
                        .as_deref()
                        .map(|c| c.trim_start_matches('+').to_string()),
                    limit: l.limit,
                    ..Default::default()
                })
                .await?;
            if l.json {
                let data: Vec<_> = rows
                    .iter()
                    .map(|c| crate::conversation::view(&s, c))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&data)?);
                return Ok(());
            }
            if rows.is_empty() {
                println!("no conversations yet");
                return Ok(());
            }
            println!(
                "{:<38} {:<16} {:<18} {:<7} {:>5} {:<26} ENDED",
                "ID", "CUSTOMER", "TYPE", "STATE", "MSGS", "STARTED"
            );
            for c in rows {
                let ended = match (&c.ended_at, &c.end_reason) {
                    (Some(at), Some(why)) => format!("{} ({why})", display(*at)),
                    _ => String::new(),
                };
                println!(
                    "{:<38} {:<16} {:<18} {:<7} {:>5} {:<26} {ended}",
                    c.id,
                    c.customer_phone().unwrap_or(c.contact.clone()),
                    c.kind,
                    c.state(),
                    c.message_count,
                    display(c.started_at)
                );
            }
        }
        Some(ConversationsCommand::Show { id, json }) => {
            let c = store
                .conversation(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no conversation with id '{id}'"))?;
            let lines = store.transcript(id).await?;
            if *json {
                let mut v = crate::conversation::view(&s, &c);
                v["transcript"] = serde_json::json!(lines);
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("Conversation {} ({}, {})", c.id, c.kind, c.state());
            println!(
                "Customer {}{} on number {}",
                c.customer_phone().unwrap_or(c.contact.clone()),
                c.contact_name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                c.sender_id
            );
            println!("Started {}", display(c.started_at));
            for l in &lines {
                let who = if l.direction == "inbound" {
                    "Customer"
                } else {
                    "Business"
                };
                println!("  [{}] {who}: {}  ({})", display(l.at), l.text, l.status);
            }
            if let (Some(at), Some(why)) = (c.ended_at, &c.end_reason) {
                println!("Ended {} ({why})", display(at));
            }
        }
        Some(ConversationsCommand::Close { id }) => {
            let c = store
                .conversation(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no conversation with id '{id}'"))?;
            anyhow::ensure!(c.is_open(), "conversation {id} ended already");
            store
                .record_fact(&Fact::CloseRequested {
                    conversation_id: id.clone(),
                    at: crate::time::now_ms(),
                })
                .await?;
            println!("conversation {id} will be closed by the running server within a second");
        }
    }
    Ok(())
}
