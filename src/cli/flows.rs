//! `ringback flows …`: check flow files before they run.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{Cli, load};
use crate::cloud_api::template::Template;
use crate::flows::{Problem, check_flow, definition};

#[derive(Subcommand, Debug)]
pub enum FlowsCommand {
    /// Check flow files: the format, every step's keys, targets that exist, no loop without a
    /// delay, templates that exist with every variable mapped, valid schedules and variables.
    /// Prints each problem as FILE:LINE: step 'ID': what to change; exits 1 if there is one.
    Check {
        /// Flow files (`*.toml`) or directories of them.
        #[arg(default_value = "flows")]
        paths: Vec<PathBuf>,
        /// Skip the template checks (no store or configuration at hand).
        #[arg(long)]
        no_templates: bool,
    },
}

pub async fn run(cli: &Cli, command: &FlowsCommand) -> anyhow::Result<()> {
    match command {
        FlowsCommand::Check {
            paths,
            no_templates,
        } => {
            let templates = if *no_templates {
                None
            } else {
                Some(registry(cli).await?)
            };
            let files = flow_files(paths)?;
            let mut bad = 0;
            for file in &files {
                let problems = check_file(file, templates.as_deref())?;
                if problems.is_empty() {
                    println!("{}: ok", file.display());
                }
                for p in &problems {
                    println!("{}", located(file, p));
                }
                bad += usize::from(!problems.is_empty());
            }
            println!("{} flow(s) checked, {} with problems", files.len(), bad);
            if bad > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// Reads and checks one file.
pub fn check_file(file: &Path, templates: Option<&[Template]>) -> anyhow::Result<Vec<Problem>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(match definition::parse(&text, &stem) {
        Ok(flow) => check_flow(&flow, templates),
        Err(e) => vec![e.into()],
    })
}

/// `FILE:LINE: step 'ID': message`, as compilers print it (editors jump to it).
pub fn located(file: &Path, p: &Problem) -> String {
    let mut out = file.display().to_string();
    if let Some(line) = p.line {
        out.push_str(&format!(":{line}"));
    }
    out.push_str(": ");
    if let Some(step) = &p.step {
        out.push_str(&format!("step '{step}': "));
    }
    out.push_str(&p.message);
    out
}

/// The `*.toml` files named or inside the directories named, sorted.
fn flow_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            anyhow::bail!(
                "{} does not exist: name flow files (*.toml) or a directory of them",
                p.display()
            );
        }
    }
    if files.is_empty() {
        anyhow::bail!("no flow files (*.toml) in {paths:?}");
    }
    Ok(files)
}

/// The templates a send could use: synced ones in the store, the configuration's declared
/// ones, and, when the sandbox stands in for the Cloud API, the sandbox's own (what `serve`
/// would sync from it).
async fn registry(cli: &Cli) -> anyhow::Result<Vec<Template>> {
    let (_, s) = load(cli)?;
    let store = crate::store::open(&s.store_url).await?;
    let mut templates = store.templates().await?;
    templates.extend(s.templates.iter().cloned());
    if s.api_base.is_none() {
        for sender in &s.senders {
            templates.extend(crate::cloud_api::template::demo_templates(&sender.waba_id));
        }
    }
    Ok(templates)
}
