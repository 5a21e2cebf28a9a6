//! `ringback keys …` and `ringback templates`: administration that reads or writes the store.

use clap::Subcommand;

use super::{Cli, load};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key for /api/v1 (shown once; only its hash is stored).
    Create {
        /// What the key is for, e.g. "crm".
        #[arg(long)]
        name: String,
    },
    /// List API keys (never the secrets).
    List,
    /// Revoke a key by its id (key_…).
    Revoke { id: String },
}

pub async fn keys(cli: &Cli, cmd: &KeysCommand) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    match cmd {
        KeysCommand::Create { name } => {
            let (key, secret) = crate::api_keys::create(store.as_ref(), name).await?;
            println!("{secret}");
            eprintln!(
                "created {} ({name}); the key above is shown only now. Use it as 'Authorization: Bearer <key>'.",
                key.id
            );
        }
        KeysCommand::List => {
            println!("{:<38} {:<16} {:<26} REVOKED", "ID", "NAME", "CREATED");
            for k in store.api_keys().await? {
                let revoked = k
                    .revoked_at
                    .map(crate::time::display)
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<38} {:<16} {:<26} {revoked}",
                    k.id,
                    k.name,
                    crate::time::display(k.created_at)
                );
            }
        }
        KeysCommand::Revoke { id } => {
            anyhow::ensure!(
                store.revoke_api_key(id, crate::time::now_ms()).await?,
                "no active key with id {id}"
            );
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// `ringback templates`: the registry as last synced, with variables and a preview.
pub async fn templates(cli: &Cli) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    let list = store.templates().await?;
    if list.is_empty() {
        println!(
            "no templates synced yet: `ringback serve` syncs them from the Cloud API at start"
        );
    }
    for t in list {
        let vars = t.body_params();
        let sample: Vec<String> = vars.iter().map(|v| format!("<{v}>")).collect();
        println!(
            "{} ({}) {} {} — variables: [{}] {}",
            t.name,
            t.language,
            t.status,
            t.category,
            vars.join(", "),
            t.parameter_format
        );
        println!("    {}", t.preview(&sample));
    }
    Ok(())
}
