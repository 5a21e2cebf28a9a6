//! Integration tests: the real router over HTTP against the sandbox.
mod consent;
mod inbound;
mod missed_calls;
mod outbox;
mod pacing;
mod policy;
mod restart;
mod sandbox;
mod sip;
mod support;
