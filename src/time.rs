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

/// A time a person typed: RFC 3339 (`2026-12-01T09:00:00Z`) or unix milliseconds; the error
/// says which forms are understood.
pub fn parse(v: &str) -> Result<Millis, String> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    v.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            format!("'{v}' is neither an RFC 3339 time (2026-12-01T09:00:00Z) nor unix milliseconds: {e}")
        })
}

/// An RFC 3339 rendering of a stored timestamp, for people.
pub fn display(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{ms}ms"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_typed_time_is_rfc_3339_or_unix_milliseconds() {
        assert_eq!(super::parse("1796160752315"), Ok(1_796_160_752_315));
        assert_eq!(super::parse("2026-12-01T00:00:00Z"), Ok(1_796_083_200_000));
        let e = super::parse("yesterday").unwrap_err();
        assert!(
            e.starts_with("'yesterday' is neither an RFC 3339 time"),
            "{e}"
        );
    }
}
