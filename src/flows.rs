//! Flows: WhatsApp automations written as files — a trigger, then steps (send, delay, wait for
//! a reply, branch, HTTP request, loop …) that run durably and keep the platform's rules.
//!
//! This part reads and checks flow definitions (`flows/*.toml`); `ringback flows check`
//! prints every problem with its file, line and step. Running them builds on it.
//!
//! - [`definition`]: the file format, read from TOML into typed steps, with the line of each
//!   step for messages;
//! - [`expr`]: variable mapping and conditions, written in minijinja (`{{ trigger.caller }}`,
//!   `steps.fetch.body.items | length > 0`), and the variables they may name;
//! - [`check`]: the rules a flow must pass before it runs — targets that exist, no loop
//!   without a wait, templates that exist with every variable mapped, a valid schedule.

pub mod check;
pub mod definition;
pub mod expr;

pub use check::{Problem, check_flow};
pub use definition::{Flow, Step, StepKind, Trigger};

#[cfg(test)]
mod tests;
