//! `ringback store copy --from URL --to URL`: moves an installation's rows between stores
//! (SQLite → PostgreSQL, back, or SQLite → SQLite).
//!
//! The destination is migrated first. Then every table of [`tables::TABLES`] is copied in
//! foreign-key order, read from the source in one read transaction (a consistent snapshot even
//! while the server writes) in keyset batches, and inserted with `ON CONFLICT (key) DO
//! NOTHING`, keeping ids, so a second run adds only what is missing. PostgreSQL identity
//! sequences are then moved past the copied ids, and every table's count in the destination
//! is checked against the snapshot's.

use std::io::Write as _;

use clap::{Args, Subcommand};

mod db;
mod tables;
#[cfg(test)]
mod tests;

use db::{Backend, Destination, Source, redact};
use tables::{TABLES, Table};

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy every row from one store to another, e.g. from SQLite to PostgreSQL.
    ///
    /// Example: ringback store copy --from sqlite://ringback.db --to postgres://rb@db/ringback
    ///
    /// The destination is created or migrated first. The source is read in one read
    /// transaction, so it may be a running server's store: the copy is the state at one
    /// moment, and rows written after it are picked up by running the command again.
    /// Ids are kept and rows already in the destination are skipped, so running it twice is
    /// safe; the second run copies only what is new.
    ///
    /// It prints, per table, the rows in the source, the rows copied now and the rows that
    /// were already there, then checks that each table in the destination has as many rows
    /// as the source and exits non-zero, naming the table, if one does not.
    ///
    /// To move: copy while the old server runs, stop it, copy again (only the last rows
    /// move), then set store_url to the new URL and start the server.
    Copy(CopyArgs),
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The store to read: sqlite://path/to/ringback.db or postgres://user@host/database.
    /// It is never written to.
    #[arg(long)]
    pub from: String,
    /// The store to fill (created if it is a SQLite file that does not exist). It must not be
    /// in use by a server.
    #[arg(long)]
    pub to: String,
    /// Rows per read and per insert.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
}

pub(crate) async fn run(command: &StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Copy(args) => {
            let options = Options {
                batch: args.batch as usize,
                progress_every: 50_000,
            };
            copy(&args.from, &args.to, &options).await.map(|_| ())
        }
    }
}

/// How a copy runs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Rows per batch (capped so one insert stays under SQLite's 32 766 bound parameters).
    pub batch: usize,
    /// A progress line on stderr every this many rows of a table that has more.
    pub progress_every: u64,
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableReport {
    pub table: &'static str,
    /// Rows in the source's snapshot.
    pub source: u64,
    /// Rows this run inserted.
    pub copied: u64,
    /// Source rows whose key the destination already had.
    pub already: u64,
    /// Rows in the destination after the copy.
    pub destination: u64,
}

/// Copies every table from `from` to `to`, printing a line per table, and fails naming each
/// table whose destination count differs from the source's.
pub(crate) async fn copy(
    from: &str,
    to: &str,
    options: &Options,
) -> anyhow::Result<Vec<TableReport>> {
    if from == to {
        anyhow::bail!("--from and --to are the same store ({})", redact(from));
    }
    // Validate both URLs before touching either store.
    Backend::of(from)?;
    Backend::of(to)?;
    // The source first: a wrong or missing source then leaves the destination untouched.
    let mut source = Source::open(from).await?;
    let destination = Destination::open_and_migrate(to).await?;
    println!(
        "copying {} to {} (destination schema up to date)",
        redact(from),
        redact(to)
    );
    println!(
        "{:<24} {:>12} {:>12} {:>12}",
        "TABLE", "SOURCE", "COPIED NOW", "ALREADY"
    );
    let mut reports = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let report = copy_table(&mut source, &destination, table, options).await?;
        println!(
            "{:<24} {:>12} {:>12} {:>12}",
            report.table, report.source, report.copied, report.already
        );
        reports.push(report);
    }
    source.finish().await?;
    destination.close().await;

    let differing: Vec<String> = reports
        .iter()
        .filter(|r| r.destination != r.source)
        .map(|r| {
            format!(
                "{} has {} rows in the destination but {} in the source",
                r.table, r.destination, r.source
            )
        })
        .collect();
    if !differing.is_empty() {
        anyhow::bail!(
            "the copy is incomplete: {}. The destination holds rows the source does not (was \
             a server writing to it?); copy into an empty store.",
            differing.join("; ")
        );
    }
    let rows: u64 = reports.iter().map(|r| r.source).sum();
    let copied: u64 = reports.iter().map(|r| r.copied).sum();
    println!(
        "done: {} tables checked, {rows} rows in both stores, {copied} copied by this run",
        reports.len()
    );
    Ok(reports)
}

async fn copy_table(
    source: &mut Source,
    destination: &Destination,
    table: &'static Table,
    options: &Options,
) -> anyhow::Result<TableReport> {
    let total = u64::try_from(source.count(table).await?).unwrap_or(0);
    // SQLite binds at most 32 766 parameters per statement.
    let batch = options.batch.clamp(1, 30_000 / table.columns.len());
    let key_at: Vec<usize> = table
        .key
        .iter()
        .map(|k| {
            table
                .columns
                .iter()
                .position(|c| c.name == *k)
                .expect("every key column is a column (checked by the schema test)")
        })
        .collect();
    let (mut read, mut copied, mut next_progress) = (0u64, 0u64, options.progress_every);
    let mut after: Option<Vec<db::Value>> = None;
    loop {
        let rows = source
            .batch(table, after.as_deref(), batch)
            .await
            .map_err(|e| e.context(format!("reading {} from the source", table.name)))?;
        let Some(last) = rows.last() else { break };
        after = Some(key_at.iter().map(|&i| last[i].clone()).collect());
        copied += destination
            .insert(table, &rows)
            .await
            .map_err(|e| e.context(format!("inserting into {} in the destination", table.name)))?;
        read += rows.len() as u64;
        if total > options.progress_every && read >= next_progress {
            eprintln!(
                "  {}: {read} of {total} rows ({}%)",
                table.name,
                read * 100 / total.max(1)
            );
            let _ = std::io::stderr().flush();
            next_progress += options.progress_every;
        }
        if rows.len() < batch {
            break;
        }
    }
    destination.reset_identity(table).await?;
    let in_destination = u64::try_from(destination.count(table).await?).unwrap_or(0);
    Ok(TableReport {
        table: table.name,
        source: read,
        copied,
        already: read - copied,
        destination: in_destination,
    })
}
