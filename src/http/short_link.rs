//! `GET /l/{code}`: a tracked click-to-chat link's short address. It counts the click (and
//! journals `link.clicked`) and redirects to the link's wa.me address.
//!
//! The redirect target is only ever built from the stored link — a business number and its
//! text — never from the request, so the route cannot be used as an open redirect; a path that
//! is not a code at all is refused before the store is asked. Clicks written to the store are
//! limited ([`CLICKS_PER_SECOND`]); beyond it a click still redirects, uncounted.

/// Clicks counted per second, all links together: the writes a public address may cause.
pub const CLICKS_PER_SECOND: u32 = 50;

fn click_quota() -> governor::Quota {
    let per_second =
        std::num::NonZeroU32::new(CLICKS_PER_SECOND).unwrap_or(std::num::NonZeroU32::MIN);
    governor::Quota::per_second(per_second)
}

/// The limiter of counted clicks.
pub fn click_limiter() -> std::sync::Arc<governor::DefaultDirectRateLimiter> {
    std::sync::Arc::new(governor::RateLimiter::direct(click_quota()))
}

use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::extract::ApiPath;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/l/{code}", axum::routing::get(follow))
}

async fn follow(
    State(s): State<AppState>,
    method: Method,
    ApiPath(code): ApiPath<String>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found("this link does not exist (or is no longer tracked)");
    let code = crate::links::normalize_code(&code).ok_or_else(missing)?;
    // A HEAD (a link checker, a preview) is not a click; nor are clicks beyond what the
    // store is given to write (the address is public: a loop on it must not fill the events).
    let count = method != Method::HEAD && s.link_clicks.check().is_ok();
    let link = if count {
        s.store.link_clicked(&code, crate::time::now_ms()).await?
    } else {
        s.store.link(&code).await?.filter(|l| l.tracked)
    }
    .ok_or_else(missing)?;
    let outcome = if count { "counted" } else { "not_counted" };
    metrics::counter!("ringback_link_clicks_total", "outcome" => outcome).increment(1);
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, link.wa_me()),
            // Every click must reach Ringback to be counted.
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::REFERRER_POLICY, "no-referrer".to_string()),
        ],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    #[test]
    fn fifty_clicks_a_second_are_counted_and_the_next_one_is_not() {
        let clock = FakeRelativeClock::default();
        let limiter = governor::RateLimiter::direct_with_clock(super::click_quota(), clock.clone());
        for i in 0..super::CLICKS_PER_SECOND {
            assert!(limiter.check().is_ok(), "click {i}");
        }
        assert!(limiter.check().is_err());
        clock.advance(std::time::Duration::from_millis(20));
        assert!(limiter.check().is_ok(), "one more after 1/50 s");
        assert!(limiter.check().is_err());
    }
}
