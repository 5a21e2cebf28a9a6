//! Integration tests: the real router over HTTP against the sandbox.
mod calling;
mod consent;
mod durability;
mod http_errors;
mod inbound;
mod listener;
mod metrics;
mod missed_calls;
mod outbox;
mod pacing;
mod pbx;
mod policy;
mod restart;
mod sandbox;
mod served;
mod sip;
mod support;
