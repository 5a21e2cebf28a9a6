//! `ringback users`: the people who sign in to the web console.

use std::io::{BufRead, IsTerminal};

use clap::Subcommand;

use super::{Cli, load};
use crate::users::Role;

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Create a console user. The password is asked for (not echoed), or read from the
    /// first line of standard input with --password-stdin; only its Argon2id hash is stored.
    ///
    /// Example: ringback users create --email ann@clinic.example --role admin
    Create {
        #[arg(long)]
        email: String,
        /// admin (everything, settings included) or agent (calls and conversations).
        #[arg(long, default_value = "agent", value_parser = ["admin", "agent"])]
        role: String,
        /// Read the password from standard input (for scripts): `printf %s "$PW" | ringback users create … --password-stdin`.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List console users (never their passwords).
    List,
    /// Disable a user: they cannot sign in, and their open sessions end at once.
    Disable { email: String },
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Password again: ")?;
    anyhow::ensure!(
        first == again,
        "the two passwords differ; nothing was created"
    );
    Ok(first)
}

pub async fn users(cli: &Cli, cmd: &UsersCommand) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    match cmd {
        UsersCommand::Create {
            email,
            role,
            password_stdin,
        } => {
            let role = Role::parse(role).map_err(anyhow::Error::msg)?;
            // Checked before asking, so a typo in the email does not cost a password.
            crate::users::normalize_email(email).map_err(anyhow::Error::msg)?;
            let password = read_password(*password_stdin)?;
            let user = crate::users::create(store.as_ref(), email, role, &password).await?;
            println!(
                "created {} ({}, {}); sign in at http://{}/",
                user.email, user.role, user.id, s.listen
            );
        }
        UsersCommand::List => {
            println!("{:<36} {:<6} {:<26} STATE", "EMAIL", "ROLE", "CREATED");
            for u in store.users().await? {
                let state = if u.disabled_at.is_some() {
                    "disabled"
                } else {
                    "active"
                };
                println!(
                    "{:<36} {:<6} {:<26} {state}",
                    u.email,
                    u.role,
                    crate::time::display(u.created_at)
                );
            }
        }
        UsersCommand::Disable { email } => {
            let email = crate::users::normalize_email(email).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                store.disable_user(&email, crate::time::now_ms()).await?,
                "no active user has the email {email} (see `ringback users list`)"
            );
            println!("disabled {email}; their sessions have ended");
        }
    }
    Ok(())
}
