//! Outbound webhooks: published events delivered to the endpoints people register, signed
//! the Standard Webhooks way (<https://www.standardwebhooks.com>), so receivers verify them
//! with the official libraries.
//!
//! - [`signing`]: `whsec_` secrets and the `v1,<base64 HMAC-SHA256>` signature;
//! - [`address`]: which URLs may be called (SSRF: no loopback, private or link-local
//!   addresses unless allowed), checked when an endpoint is registered and again on every
//!   connection, after DNS;
//! - [`dispatcher`]: one worker per endpoint, so a slow or dead endpoint delays only itself;
//!   a conversation's events go out in order (a later one waits while an earlier one is
//!   pending); failures are retried on [`crate::retry::webhook_retry_at`]'s schedule for
//!   three days and more; an endpoint failing for `disable_after_days` is disabled with a
//!   reason and a `webhook_endpoint.disabled` event.
//!
//! Deliveries are rows written with the event they carry (see [`crate::conversation::tracker`]),
//! so a crash loses none: a delivery in flight when the process stops is pending still and
//! goes again, with the same `webhook-id`, for the receiver to drop if it has seen it.

pub mod address;
pub mod dispatcher;
pub mod signing;

pub use dispatcher::Dispatcher;

use crate::events::check_types;
use crate::store::Endpoint;
use crate::time::Millis;

/// What registering (or changing) an endpoint needs.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
}

/// Checks an endpoint as a person gave it; the error says what to change.
pub async fn check(input: &EndpointInput, allow_private: bool) -> Result<(), String> {
    check_types(&input.event_types)?;
    address::check_url(&input.url, allow_private).await
}

/// A new, enabled endpoint with a fresh secret.
pub fn new_endpoint(input: EndpointInput, now: Millis) -> Endpoint {
    Endpoint {
        id: format!("ep_{}", uuid::Uuid::now_v7().simple()),
        url: input.url,
        description: input.description,
        event_types: input.event_types,
        secret: signing::new_secret(),
        previous_secret: None,
        previous_until: None,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
    }
}

/// How long the secret replaced by a rotation keeps signing alongside the new one, so
/// receivers can switch without losing a delivery.
pub const ROTATION_OVERLAP_MS: Millis = 24 * crate::time::HOUR_MS;

/// Rotates an endpoint's secret: the old one stays valid (signed alongside) for a day.
pub fn rotate(e: &mut Endpoint, now: Millis) {
    e.previous_secret = Some(std::mem::replace(&mut e.secret, signing::new_secret()));
    e.previous_until = Some(now + ROTATION_OVERLAP_MS);
}
