//! WhatsApp Business Calling: the rules Meta applies to calls between a business number and
//! a WhatsApp user, kept by Ringback so it refuses locally what Meta would refuse.
//!
//! - [`permission`]: the call-permission state machine per (business number, user) — pure.
//! - [`book`]: the service that applies it under a lock and persists every change as a
//!   `call.permission_changed` event.
//! - [`region`]: where business-initiated calling is not offered.
//! - [`rejecter`]: rejects a ringing user call after `calling.reject_after_seconds`, so the
//!   caller gets the WhatsApp reply at once instead of after Meta's 30–60 s timeout.
//! - [`settings`]: the `calling` object of `/{phone-number-id}/settings` built from config.

pub mod book;
pub mod permission;
pub mod region;
pub mod rejecter;
pub mod settings;

pub use book::PermissionBook;
pub use permission::{Limits, PermissionRecord, PermissionStatus, Refusal};
