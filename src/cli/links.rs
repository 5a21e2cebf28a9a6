//! `ringback links`: click-to-chat links — a wa.me link, the app's deep link and a QR code
//! that open a chat with a business number, the text already typed ([`crate::links`]).

use clap::Subcommand;

use super::{Cli, load};
use crate::links::NewLink;

#[derive(Subcommand, Debug)]
pub enum LinksCommand {
    /// Make a link. Prints the wa.me link, the whatsapp:// deep link, the tracked short link
    /// (`/l/CODE`, when server.public_base_url is set) and the QR code in the terminal; writes
    /// the QR code as PNG or SVG with --png / --svg.
    ///
    /// Example: ringback links create --text "Hi, I missed your call" --source website --png qr.png
    Create {
        /// The text the customer's WhatsApp opens with.
        #[arg(long, default_value = "")]
        text: String,
        /// Where the link is published (website, flyer, email-signature …): shown with every
        /// click and conversation it brings.
        #[arg(long)]
        source: String,
        /// The business number (phone_number_id); the first [[senders]] when absent.
        #[arg(long)]
        number: Option<String>,
        /// A plain wa.me link: no reference in the text, no short link, nothing counted.
        #[arg(long)]
        untracked: bool,
        /// Also create Meta's own QR code and short link (wa.me/message/…) through the Cloud
        /// API (the sandbox when configured); the text must then fit in 140 characters.
        #[arg(long)]
        meta: bool,
        /// Write the QR code as a PNG file.
        #[arg(long, value_name = "FILE")]
        png: Option<std::path::PathBuf>,
        /// Write the QR code as an SVG file.
        #[arg(long, value_name = "FILE")]
        svg: Option<std::path::PathBuf>,
        /// Print the link as JSON (as the API answers) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List links, newest first, with their clicks and the conversations they started.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

pub async fn run(cli: &Cli, cmd: &LinksCommand) -> anyhow::Result<()> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    let base = s.public_base_url.as_deref();
    match cmd {
        LinksCommand::Create {
            text,
            source,
            number,
            untracked,
            meta,
            png,
            svg,
            json,
        } => {
            let client = if *meta {
                super::calling::client(&s)?
            } else {
                // Not called without --meta; any base will do.
                crate::cloud_api::Client::new("http://127.0.0.1", &s.api_version, s.request_timeout)
            };
            let new = NewLink {
                text: text.clone(),
                source: source.clone(),
                sender_id: number.clone(),
                tracked: !untracked,
                meta: *meta,
            };
            let link =
                crate::links::create(store.as_ref(), &s, &client, new, crate::time::now_ms())
                    .await?;
            let target = link.qr_target(base);
            if let Some(path) = png {
                std::fs::write(path, crate::links::qr::png(&target, 8)?)?;
            }
            if let Some(path) = svg {
                std::fs::write(path, crate::links::qr::svg(&target, 256)?)?;
            }
            if *json {
                let view = crate::links::view(&link, base);
                println!("{}", serde_json::to_string_pretty(&view)?);
                return Ok(());
            }
            println!(
                "link {} ({}), number +{}",
                link.code, link.source, link.number
            );
            println!("  text:      {}", link.prefilled());
            println!("  wa.me:     {}", link.wa_me());
            println!("  app:       {}", link.deep_link());
            match link.tracked_url(base) {
                Some(u) => println!("  tracked:   {u}"),
                None if link.tracked => println!(
                    "  tracked:   (set server.public_base_url to get a short link that counts clicks; replies are still attributed by the reference)"
                ),
                None => {}
            }
            if let Some(d) = &link.meta_deep_link {
                println!("  meta:      {d}");
            }
            for (what, path) in [("PNG", png), ("SVG", svg)] {
                if let Some(p) = path {
                    println!("  QR {what}:    {}", p.display());
                }
            }
            println!("\n{}", crate::links::qr::terminal(&target)?);
        }
        LinksCommand::List { limit } => {
            println!(
                "{:<7} {:<16} {:>7} {:>13}  {:<26} TEXT",
                "CODE", "SOURCE", "CLICKS", "CONVERSATIONS", "CREATED"
            );
            for l in store.links((*limit).clamp(1, 1000)).await? {
                println!(
                    "{:<7} {:<16} {:>7} {:>13}  {:<26} {}",
                    l.code,
                    l.source,
                    if l.tracked {
                        l.clicks.to_string()
                    } else {
                        "-".into()
                    },
                    l.conversations,
                    crate::time::display(l.created_at),
                    l.text
                );
            }
        }
    }
    Ok(())
}
