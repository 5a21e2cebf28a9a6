//! What Meta announces about our sending numbers — throughput upgrades, quality flags,
//! messaging-limit tiers, restrictions — turned into state changes (pure; the processor
//! stores them and re-paces the outbox).

use serde_json::Value;

use crate::config::Sender;
use crate::store::NumberUpdate;

/// Throughput after Meta's automatic upgrade.
pub const UPGRADED_THROUGHPUT: u32 = 1000;

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The sender whose display number (digits) Meta names.
fn by_display<'a>(senders: &'a [Sender], display: Option<&str>) -> Option<&'a Sender> {
    let digits: String = display?.chars().filter(char::is_ascii_digit).collect();
    senders.iter().find(|s| s.display_number.digits() == digits)
}

/// The state changes a webhook `field` + `value` implies; empty for fields that say nothing
/// about numbers.
pub fn updates(field: &str, value: &Value, senders: &[Sender]) -> Vec<NumberUpdate> {
    let event = text(value, "event");
    let base = |id: Option<String>| NumberUpdate {
        phone_number_id: id,
        field: field.to_string(),
        event: event.clone(),
        detail: value.clone(),
        ..Default::default()
    };
    let tier = text(value, "max_daily_conversations_per_business")
        .or_else(|| text(value, "current_limit"));
    match field {
        "phone_number_quality_update" => {
            let id = by_display(
                senders,
                value.get("display_phone_number").and_then(Value::as_str),
            )
            .map(|s| s.phone_number_id.clone());
            let mut u = base(id);
            u.messaging_tier = tier;
            match event.as_deref() {
                Some("THROUGHPUT_UPGRADE") => u.throughput = Some(UPGRADED_THROUGHPUT),
                Some("FLAGGED") => {
                    u.status = Some("FLAGGED".into());
                    u.quality_rating = Some("RED".into());
                }
                // Meta unflags a number once quality is back to medium or high.
                Some("UNFLAGGED") => {
                    u.status = Some("CONNECTED".into());
                    u.quality_rating = Some("YELLOW".into());
                }
                _ => {}
            }
            vec![u]
        }
        "business_capability_update" => senders
            .iter()
            .map(|s| {
                let mut u = base(Some(s.phone_number_id.clone()));
                u.messaging_tier = tier.clone();
                u
            })
            .collect(),
        "account_update" => {
            let restricted = event.as_deref() == Some("ACCOUNT_RESTRICTION");
            let named = by_display(senders, value.get("phone_number").and_then(Value::as_str));
            let targets: Vec<&Sender> = match named {
                Some(s) => vec![s],
                None => senders.iter().collect(),
            };
            targets
                .into_iter()
                .map(|s| {
                    let mut u = base(Some(s.phone_number_id.clone()));
                    if restricted {
                        u.status = Some("RESTRICTED".into());
                    }
                    u
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Whether an update deserves an operator's attention (logged at WARN, counted as an alert).
pub fn is_alert(u: &NumberUpdate) -> bool {
    matches!(u.status.as_deref(), Some("FLAGGED" | "RESTRICTED"))
        || u.quality_rating.as_deref() == Some("RED")
}
