//! Every table `ringback store copy` moves, in foreign-key order (a parent before the tables
//! that reference it), with its primary key and its columns in schema order.
//!
//! This list is the copy's whole knowledge of the schema. A test
//! (`the_table_list_matches_both_migrated_schemas`) compares it with the migrated SQLite and
//! PostgreSQL schemas, so a migration that adds a table or a column fails until the list
//! says how to copy it.

/// How a column's values travel: decoded from the source and bound into the destination as
/// this Rust type, which both backends accept for the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `i64`: SQLite INTEGER, PostgreSQL BIGINT.
    Int,
    /// `String`: TEXT on both.
    Text,
    /// `Vec<u8>`: SQLite BLOB, PostgreSQL BYTEA.
    Blob,
    /// `bool`: SQLite INTEGER 0/1, PostgreSQL BOOLEAN.
    Bool,
    /// `f64`: SQLite REAL, PostgreSQL DOUBLE PRECISION.
    Real,
}

/// One column.
#[derive(Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// Whether the column may be NULL. The copy itself does not need it (a value travels
    /// as `Option` either way); the schema test holds both backends to it.
    #[cfg_attr(not(test), expect(dead_code, reason = "read only by the schema test"))]
    pub nullable: bool,
}

/// One table.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    /// Primary key columns, in key order.
    pub key: &'static [&'static str],
    pub columns: &'static [Column],
}

impl Table {
    /// A single integer `id` key: a SQLite row id, a PostgreSQL identity column whose
    /// sequence must move past the copied ids.
    pub(crate) fn has_identity(&self) -> bool {
        self.key == ["id"]
            && self
                .columns
                .iter()
                .any(|c| c.name == "id" && c.kind == Kind::Int)
    }
}

use Kind::{Blob, Bool, Int, Real, Text};

const fn req(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: false,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: true,
    }
}

/// The tables, parents first.
pub(crate) static TABLES: &[Table] = &[
    Table {
        name: "raw_payloads",
        key: &["id"],
        columns: &[
            req("id", Int),
            req("source", Text),
            req("body", Blob),
            req("received_at", Int),
        ],
    },
    Table {
        name: "inbound_events",
        key: &["id"],
        columns: &[
            req("id", Int),
            req("raw_id", Int),
            req("source", Text),
            req("dedup_key", Text),
            req("kind", Text),
            req("event_json", Text),
            req("received_at", Int),
            opt("processed_at", Int),
            opt("note", Text),
            opt("dead_at", Int),
            opt("dead_reason", Text),
        ],
    },
    Table {
        name: "contacts",
        key: &["sender_id", "wa_id"],
        columns: &[
            req("sender_id", Text),
            req("wa_id", Text),
            opt("name", Text),
            opt("last_inbound_at", Int),
            opt("last_reply_at", Int),
            opt("last_reply_message_id", Text),
            opt("referral_at", Int),
            opt("free_until", Int),
        ],
    },
    Table {
        name: "inbound_messages",
        key: &["wamid"],
        columns: &[
            req("wamid", Text),
            req("sender_id", Text),
            opt("from_wa_id", Text),
            opt("from_user_id", Text),
            req("message_type", Text),
            opt("text", Text),
            opt("context_id", Text),
            req("unknown_type", Bool),
            req("sent_at", Int),
            req("event_id", Int),
        ],
    },
    Table {
        name: "calls",
        key: &["id"],
        columns: &[
            req("id", Int),
            req("source", Text),
            req("provider_call_id", Text),
            opt("sender_id", Text),
            req("caller_raw", Text),
            opt("caller_e164", Text),
            opt("callee_raw", Text),
            req("outcome", Text),
            opt("ring_seconds", Int),
            req("missed", Bool),
            req("decision", Text),
            req("reason", Text),
            opt("message_id", Text),
            req("occurred_at", Int),
        ],
    },
    Table {
        name: "messages",
        key: &["id"],
        columns: &[
            req("id", Text),
            req("sender_id", Text),
            req("to_number", Text),
            req("kind", Text),
            req("body_json", Text),
            opt("idempotency_key", Text),
            req("reason", Text),
            req("state", Text),
            opt("wamid", Text),
            req("attempts", Int),
            req("next_attempt_at", Int),
            opt("error_code", Int),
            opt("last_error", Text),
            req("created_at", Int),
            req("updated_at", Int),
            opt("lease_owner", Text),
            opt("lease_until", Int),
        ],
    },
    Table {
        name: "attempts",
        key: &["message_id", "attempt_no"],
        columns: &[
            req("message_id", Text),
            req("attempt_no", Int),
            req("started_at", Int),
            opt("finished_at", Int),
            req("outcome", Text),
            opt("error_code", Int),
            opt("detail", Text),
        ],
    },
    Table {
        name: "message_statuses",
        key: &["wamid", "status"],
        columns: &[
            req("wamid", Text),
            req("status", Text),
            opt("message_id", Text),
            req("at", Int),
            opt("error_code", Int),
            opt("detail", Text),
        ],
    },
    Table {
        name: "numbers",
        key: &["phone_number_id"],
        columns: &[
            req("phone_number_id", Text),
            opt("throughput", Int),
            opt("quality_rating", Text),
            opt("messaging_tier", Text),
            opt("status", Text),
            req("updated_at", Int),
        ],
    },
    Table {
        name: "number_events",
        key: &["id"],
        columns: &[
            req("id", Int),
            opt("phone_number_id", Text),
            req("field", Text),
            opt("event", Text),
            req("detail", Text),
            req("at", Int),
        ],
    },
    Table {
        name: "templates",
        key: &["waba_id", "name", "language"],
        columns: &[
            req("waba_id", Text),
            req("name", Text),
            req("language", Text),
            req("id", Text),
            req("status", Text),
            req("category", Text),
            req("parameter_format", Text),
            req("components_json", Text),
            req("updated_at", Int),
        ],
    },
    Table {
        name: "consent_records",
        key: &["id"],
        columns: &[
            req("id", Int),
            req("sender_id", Text),
            req("subject", Text),
            opt("wa_id", Text),
            opt("user_id", Text),
            req("category", Text),
            req("action", Text),
            req("source", Text),
            req("evidence", Text),
            req("at", Int),
        ],
    },
    Table {
        name: "consent_state",
        key: &["sender_id", "subject", "category"],
        columns: &[
            req("sender_id", Text),
            req("subject", Text),
            req("category", Text),
            req("action", Text),
            req("record_id", Int),
            req("at", Int),
        ],
    },
    Table {
        name: "api_keys",
        key: &["id"],
        columns: &[
            req("id", Text),
            req("name", Text),
            req("hash", Text),
            req("created_at", Int),
            opt("revoked_at", Int),
        ],
    },
    Table {
        name: "call_permissions",
        key: &["sender_id", "user_id"],
        columns: &[
            req("sender_id", Text),
            req("user_id", Text),
            req("record", Text),
            req("status", Text),
            req("updated_at", Int),
        ],
    },
    Table {
        name: "call_permission_events",
        key: &["id"],
        columns: &[
            req("id", Int),
            req("sender_id", Text),
            req("user_id", Text),
            req("from_status", Text),
            req("to_status", Text),
            req("source", Text),
            req("reason", Text),
            req("at", Int),
        ],
    },
    Table {
        name: "business_calls",
        key: &["id"],
        columns: &[
            req("id", Text),
            req("sender_id", Text),
            req("user_id", Text),
            opt("wacid", Text),
            req("status", Text),
            opt("reason", Text),
            opt("duration", Int),
            req("created_at", Int),
            req("updated_at", Int),
        ],
    },
    Table {
        name: "nodes",
        key: &["id"],
        columns: &[
            req("id", Text),
            req("started_at", Int),
            req("last_seen", Int),
            opt("address", Text),
            opt("version", Text),
        ],
    },
    Table {
        name: "leases",
        key: &["name"],
        columns: &[
            req("name", Text),
            req("holder", Text),
            req("token", Int),
            req("expires_at", Int),
        ],
    },
    Table {
        name: "event_journal",
        key: &["id"],
        columns: &[
            req("id", Int),
            req("kind", Text),
            req("at", Int),
            req("fact_json", Text),
        ],
    },
    Table {
        name: "conversations",
        key: &["id"],
        columns: &[
            req("id", Text),
            req("sender_id", Text),
            req("contact", Text),
            opt("contact_name", Text),
            req("kind", Text),
            req("started_at", Int),
            req("last_message_at", Int),
            req("message_count", Int),
            opt("ended_at", Int),
            opt("end_reason", Text),
        ],
    },
    Table {
        name: "conversation_messages",
        key: &["conversation_id", "seq"],
        columns: &[
            req("conversation_id", Text),
            req("seq", Int),
            req("direction", Text),
            req("message_id", Text),
            opt("wamid", Text),
            req("kind", Text),
            req("text", Text),
            req("status", Text),
            req("at", Int),
            req("status_at", Int),
        ],
    },
    Table {
        name: "events",
        key: &["id"],
        columns: &[
            req("id", Int),
            req("type", Text),
            req("at", Int),
            opt("conversation_id", Text),
            req("data_json", Text),
        ],
    },
    Table {
        name: "webhook_endpoints",
        key: &["id"],
        columns: &[
            req("id", Text),
            req("url", Text),
            req("description", Text),
            req("event_types", Text),
            req("secret", Text),
            opt("previous_secret", Text),
            opt("previous_until", Int),
            req("enabled", Bool),
            opt("disabled_reason", Text),
            opt("failing_since", Int),
            req("created_at", Int),
        ],
    },
    Table {
        name: "webhook_deliveries",
        key: &["id"],
        columns: &[
            req("id", Int),
            req("endpoint_id", Text),
            req("event_id", Int),
            req("event_type", Text),
            opt("ordering_key", Text),
            req("state", Text),
            req("attempts", Int),
            req("next_attempt_at", Int),
            req("created_at", Int),
            opt("finished_at", Int),
            opt("last_status", Int),
            opt("last_error", Text),
        ],
    },
    Table {
        name: "webhook_attempts",
        key: &["delivery_id", "attempt_no"],
        columns: &[
            req("delivery_id", Int),
            req("attempt_no", Int),
            req("at", Int),
            opt("status", Int),
            req("latency_ms", Int),
            req("response", Text),
            opt("error", Text),
        ],
    },
    Table {
        name: "flow_versions",
        key: &["version"],
        columns: &[
            req("version", Text),
            req("name", Text),
            req("source", Text),
            req("origin", Text),
            req("created_at", Int),
        ],
    },
    Table {
        name: "flows",
        key: &["name"],
        columns: &[
            req("name", Text),
            req("version", Text),
            req("enabled", Bool),
            req("updated_at", Int),
        ],
    },
    Table {
        name: "flow_runs",
        key: &["id"],
        columns: &[
            req("id", Text),
            req("flow", Text),
            req("version", Text),
            req("trigger_key", Text),
            opt("contact", Text),
            req("status", Text),
            opt("due_at", Int),
            req("state_json", Text),
            opt("reply_json", Text),
            opt("error", Text),
            req("created_at", Int),
            req("updated_at", Int),
        ],
    },
    Table {
        name: "flow_steps",
        key: &["run_id", "seq"],
        columns: &[
            req("run_id", Text),
            req("seq", Int),
            req("at", Int),
            req("step", Text),
            req("kind", Text),
            opt("action_key", Text),
            opt("input_json", Text),
            opt("output_json", Text),
            opt("error", Text),
        ],
    },
    Table {
        name: "flow_cursor",
        key: &["name"],
        columns: &[req("name", Text), req("event_id", Int)],
    },
    Table {
        name: "assistant_threads",
        key: &["id"],
        columns: &[
            req("id", Text),
            req("assistant", Text),
            req("customer_id", Text),
            req("created_at", Int),
            req("updated_at", Int),
            opt("handed_off_at", Int),
            opt("hand_off_reason", Text),
            req("variables_json", Text),
        ],
    },
    Table {
        name: "assistant_turns",
        key: &["id"],
        columns: &[
            req("id", Int),
            req("thread_id", Text),
            req("at", Int),
            req("role", Text),
            req("content", Text),
            opt("source", Text),
            opt("prompt_tokens", Int),
            opt("completion_tokens", Int),
            opt("cost", Real),
            opt("latency_ms", Int),
            opt("error", Text),
        ],
    },
    Table {
        name: "assistant_pauses",
        key: &["sender_id", "contact"],
        columns: &[
            req("sender_id", Text),
            req("contact", Text),
            opt("conversation_id", Text),
            req("at", Int),
            req("reason", Text),
        ],
    },
    Table {
        name: "assistant_endings",
        key: &["conversation_id"],
        columns: &[
            req("conversation_id", Text),
            req("assistant", Text),
            req("at", Int),
            req("payload_json", Text),
            opt("evaluated_at", Int),
        ],
    },
    Table {
        name: "users",
        key: &["id"],
        columns: &[
            req("id", Text),
            req("email", Text),
            req("role", Text),
            req("password_hash", Text),
            req("created_at", Int),
            opt("disabled_at", Int),
        ],
    },
    Table {
        name: "sessions",
        key: &["token_hash"],
        columns: &[
            req("token_hash", Text),
            req("user_id", Text),
            req("csrf", Text),
            req("created_at", Int),
            req("expires_at", Int),
        ],
    },
    Table {
        name: "links",
        key: &["code"],
        columns: &[
            req("code", Text),
            req("sender_id", Text),
            req("number", Text),
            req("text", Text),
            req("source", Text),
            req("tracked", Bool),
            opt("meta_code", Text),
            opt("meta_deep_link", Text),
            req("clicks", Int),
            req("conversations", Int),
            req("created_at", Int),
            opt("last_clicked_at", Int),
        ],
    },
    Table {
        name: "link_contacts",
        key: &["code", "sender_id", "contact"],
        columns: &[
            req("code", Text),
            req("sender_id", Text),
            req("contact", Text),
            req("first_at", Int),
        ],
    },
];
