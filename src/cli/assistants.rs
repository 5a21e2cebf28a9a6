//! `ringback assistants …`: the configured assistants, and a question put to one — through
//! the same code as `POST /api/v1/assistants/{name}/replies`, remembering in the server's store.

use clap::Subcommand;

use super::{Cli, load};
use crate::assistants::{Ask, Assistants};

#[derive(Subcommand, Debug, Clone)]
pub enum AssistantsCommand {
    /// List the assistants of the configuration: answering mode (model or knowledge), model,
    /// knowledge files and how many passages they hold.
    List,
    /// Ask an assistant as a customer would, and print its reply, whether it handed off, and
    /// what it cost. The customer's memory is the same as the server's.
    ///
    /// Example: ringback assistants ask front-desk --customer +447700900123 "Are you open on
    /// Saturday?"
    Ask {
        /// The assistant's name (`[[assistants]] name`).
        name: String,
        /// The customer: a phone number, an email, a CRM id.
        #[arg(long)]
        customer: String,
        /// A variable the assistant declares, as NAME=VALUE (repeat for more).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Print the whole reply as JSON.
        #[arg(long)]
        json: bool,
        /// The customer's message.
        message: String,
    },
}

pub async fn run(cli: &Cli, cmd: AssistantsCommand) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    let assistants = Assistants::from_settings(&s.assistants, store, reqwest::Client::new());
    match cmd {
        AssistantsCommand::List => {
            if assistants.names().is_empty() {
                println!("no assistants: declare one under [[assistants]] in the configuration");
            }
            for name in assistants.names() {
                let a = assistants.get(name).expect("listed");
                let mode = a
                    .settings
                    .provider
                    .as_ref()
                    .map_or("knowledge only".to_string(), |p| {
                        format!("model {}", p.model)
                    });
                println!(
                    "{name:<20} {mode:<28} {} knowledge passages from {} files",
                    a.knowledge.passages().len(),
                    a.settings.knowledge.len()
                );
            }
            Ok(())
        }
        AssistantsCommand::Ask {
            name,
            customer,
            vars,
            json,
            message,
        } => {
            let mut variables = serde_json::Map::new();
            for v in vars {
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--var {v}: write NAME=VALUE"))?;
                variables.insert(k.to_string(), serde_json::Value::String(val.to_string()));
            }
            let reply = assistants
                .reply(
                    &name,
                    Ask {
                        customer_id: customer,
                        message,
                        variables,
                    },
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
                return Ok(());
            }
            for part in &reply.parts {
                println!("{part}\n");
            }
            if let Some(h) = &reply.handed_off {
                println!("-> handed off to a person ({}): {}", h.code, h.reason);
            }
            let u = &reply.usage;
            let tokens = match (u.prompt_tokens, u.completion_tokens) {
                (Some(p), Some(c)) => format!("{p} prompt + {c} completion tokens, "),
                _ => String::new(),
            };
            println!(
                "[{} · {tokens}{:.0} ms · conversation {}]",
                reply.source, u.latency_ms, reply.conversation_id
            );
            Ok(())
        }
    }
}
