//! Time as the store keeps it: unix milliseconds, UTC.
//!
//! Both SQLite and PostgreSQL hold an `i64` exactly, so every timestamp crosses the store
//! boundary as [`Millis`] and is turned into a `jiff::Timestamp` only for display.

/// Unix time in milliseconds.
pub type Millis = i64;

/// Milliseconds in one hour, for window arithmetic.
pub const HOUR_MS: Millis = 3_600_000;

/// Now, in unix milliseconds.
pub fn now_ms() -> Millis {
    jiff::Timestamp::now().as_millisecond()
}

/// An RFC 3339 rendering of a stored timestamp, for people.
pub fn display(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{ms}ms"))
}
