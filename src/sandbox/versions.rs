//! The Graph API versions the sandbox answers, and Graph's answer for any other version.
//!
//! Meta serves each Graph API version `vNN.0` for about two years, so a handful are live at any
//! time. The sandbox answers those ([`OLDEST`]..=[`NEWEST`]) plus the versions it was told
//! about ([`super::SandboxSettings::api_versions`], the configured `whatsapp.api_version`), so
//! a client with a mistyped or invented version (`v2.80`, `v<10,000 digits>`, `latest`) fails
//! here as it would against Meta instead of passing the tests.
//!
//! What Graph answers for a version it does not have: it reads the first segment as a node and
//! the rest as unknown path components — HTTP 400, `OAuthException` code 2500,
//! "Unknown path components: /<rest of the path>". Source: client reports of exactly this
//! answer when the version was wrong, e.g. arsduo/koala issue #611 ("type: OAuthException,
//! code: 2500, message: Unknown path components: …  [HTTP 400]", answered "I had the same error
//! when I specified a wrong version … v2.80"), and facebookarchive/facebook-swift-sdk issue 28
//! (HTTP 400, code 2500, type OAuthException). A version past its end of life is automatically
//! upgraded by Graph for most endpoints (the Ads API answers 2635 instead); the sandbox does
//! not emulate that: an old version is refused like an unknown one, which tells the operator
//! to update rather than silently testing against behaviour Meta no longer has.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Sandbox;
use super::messages::GraphFailure;

/// The oldest Graph API version the sandbox answers without being told (v19.0, May 2024). The
/// range is a little generous on both sides: its job is to refuse versions that never existed,
/// not to track Meta's deprecation calendar to the day.
pub const OLDEST: u32 = 19;
/// The newest one; third-party clients already default to v26.0 (pywa).
pub const NEWEST: u32 = 27;

/// Whether `version` (the first path segment, e.g. `v23.0`) is one the sandbox answers.
pub fn supported(version: &str, extra: &[String]) -> bool {
    if extra.iter().any(|v| v == version) {
        return true;
    }
    // Only `v<1 or 2 digits>.0`: a long digit string is never parsed as a number.
    let Some(major) = version
        .strip_prefix('v')
        .and_then(|v| v.strip_suffix(".0"))
        .filter(|m| (1..=2).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|m| m.parse::<u32>().ok())
    else {
        return false;
    };
    (OLDEST..=NEWEST).contains(&major)
}

/// Layer on the Cloud API routes (`/{version}/…`): any other version gets Graph's 2500.
pub async fn check(State(sb): State<Sandbox>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let (version, rest) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path.trim_start_matches('/'), ""));
    if supported(version, &sb.settings.api_versions) {
        return next.run(req).await;
    }
    let mut f = GraphFailure::new(
        2500,
        "Unknown path components",
        format!("Unknown path components: /{rest}"),
    );
    f.http = axum::http::StatusCode::BAD_REQUEST;
    f.into_response()
}

#[cfg(test)]
mod tests {
    use super::supported;

    #[test]
    fn metas_live_versions_and_the_configured_one_are_answered() {
        for v in ["v19.0", "v23.0", "v27.0"] {
            assert!(supported(v, &[]), "{v}");
        }
        assert!(supported("v17.0", &["v17.0".to_string()]));
    }

    #[test]
    fn anything_else_is_not() {
        let huge = format!("v{}", "9".repeat(10_000));
        for v in [
            "v18.0", "v28.0", "v23.1", "v023.0", "v2.80", "23.0", "v", "latest", "", &huge,
        ] {
            assert!(!supported(v, &[]), "{v}");
        }
    }
}
