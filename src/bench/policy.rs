//! `ringback bench --policy`: how long the checks before a send take (`policy::check`: window,
//! consent ledger, Cloud API rule book against the templates) with a large SQLite store —
//! by default 1,000,000 contacts and 100,000 consent records.

use std::time::Instant;

use serde_json::json;
use sqlx::sqlite::SqlitePoolOptions;

use crate::config::Config;
use crate::policy::{self, Outgoing};
use crate::template_registry::Registry;

pub async fn run(contacts: usize, checks: usize, json_out: bool) -> anyhow::Result<()> {
    let dir =
        std::env::temp_dir().join(format!("ringback-policy-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("policy.db").display());
    let settings =
        Config::load_with_env(None, vec![("RINGBACK_STORE__URL".into(), url.clone())])?.build()?;
    let store = crate::store::open(&url).await?;
    let sender = settings.senders[0].clone();
    let now = crate::time::now_ms();

    // Bulk load with plain SQL: half the contacts wrote within the window, every tenth opted out.
    let started = Instant::now();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let mut tx = pool.begin().await?;
    for chunk in (0..contacts).collect::<Vec<_>>().chunks(2_000) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO contacts (sender_id, wa_id, name, last_inbound_at) ",
        );
        q.push_values(chunk, |mut b, i| {
            b.push_bind(sender.phone_number_id.clone())
                .push_bind(format!("9195{i:08}"))
                .push_bind(format!("Contact {i}"))
                .push_bind(if i % 2 == 0 {
                    Some(now - 3_600_000)
                } else {
                    None
                });
        });
        q.build().execute(&mut *tx).await?;
    }
    for chunk in (0..contacts / 10).collect::<Vec<_>>().chunks(2_000) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO consent_records (id, sender_id, subject, wa_id, category, action, source, evidence, at) ",
        );
        q.push_values(chunk, |mut b, k| {
            let i = k * 10;
            b.push_bind(*k as i64 + 1)
                .push_bind(sender.phone_number_id.clone())
                .push_bind(format!("9195{i:08}"))
                .push_bind(format!("9195{i:08}"))
                .push_bind("all")
                .push_bind("opt_out")
                .push_bind("import")
                .push_bind("bench")
                .push_bind(now);
        });
        q.build().execute(&mut *tx).await?;
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO consent_state (sender_id, subject, category, action, record_id, at) ",
        );
        q.push_values(chunk, |mut b, k| {
            let i = k * 10;
            b.push_bind(sender.phone_number_id.clone())
                .push_bind(format!("9195{i:08}"))
                .push_bind("all")
                .push_bind("opt_out")
                .push_bind(*k as i64 + 1)
                .push_bind(now);
        });
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    drop(pool);
    // Open again, as `serve` would after a restart: the policy index loads from the tables.
    drop(store);
    let store = crate::store::open(&url).await?;
    let load = started.elapsed();

    let registry =
        Registry::from_templates(crate::cloud_api::template::demo_templates(&sender.waba_id));
    let mut times = Vec::with_capacity(checks);
    let (mut approved, mut refused) = (0usize, 0usize);
    for n in 0..checks {
        let i = (n.wrapping_mul(7_919)) % contacts.max(1);
        let to = crate::phone::PhoneE164::from_wa_id(&format!("9195{i:08}")).expect("digits");
        let out = if n % 2 == 0 {
            Outgoing {
                kind: "text".into(),
                payload: json!({"body": "Your order is ready."}),
            }
        } else {
            Outgoing {
                kind: "template".into(),
                payload: json!({"name": "missed_call_followup", "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}, {"type": "text", "text": "C"}]}]}),
            }
        };
        let t = Instant::now();
        let facts = store
            .policy_facts(&sender.phone_number_id, to.digits())
            .await?;
        let result = policy::check(&facts, &registry, &sender, &to, out, None, "msg_bench", now);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        if result.is_ok() {
            approved += 1
        } else {
            refused += 1
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let (p50, p99, max) = (pct(0.5), pct(0.99), times.last().copied().unwrap_or(0.0));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"contacts": contacts, "checks": checks, "p50_us": p50, "p99_us": p99, "max_us": max, "approved": approved, "refused": refused, "load_seconds": load.as_secs_f64()})
            )?
        );
    } else {
        println!(
            "policy: {checks} checks against {contacts} contacts ({} opted out): p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs ({approved} allowed, {refused} refused; store loaded in {:.1} s)",
            contacts / 10,
            load.as_secs_f64()
        );
    }
    Ok(())
}
