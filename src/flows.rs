//! Flows: WhatsApp automations written as files — a trigger, then steps (send, delay, wait for
//! a reply, branch, HTTP request, loop …) that run durably and keep the platform's rules.
//!
//! This part reads and checks flow definitions (`flows/*.toml`; `ringback flows check` prints
//! every problem with its file, line and step) and interprets them step by step; the durable
//! runner (runs and waits stored, actions through the outbox and policy) builds on it.
//!
//! - [`definition`]: the file format, read from TOML into typed steps, with the line of each
//!   step for messages;
//! - [`expr`]: variable mapping and conditions, written in minijinja (`{{ trigger.caller }}`,
//!   `steps.fetch.body.items | length > 0`), and the variables they may name;
//! - [`check`]: the rules a flow must pass before it runs — targets that exist, no loop
//!   without a wait, templates that exist with every variable mapped, a valid schedule;
//! - [`engine`]: the interpreter that moves a run through its steps — pure, so the runner
//!   stores a run's state after each step and a clock can be simulated; [`render`] fills in
//!   the variables, failing a step that names one that is not set;
//! - [`schedule`]: when a cron trigger fires next in its time zone, daylight saving included;
//! - [`send`]: a send step as the same message an API send is, for the same send policy;
//! - [`trial`]: `ringback flows test` — one run against a sandbox on a simulated clock.

pub mod actions;
pub mod catalog;
pub mod check;
pub mod definition;
pub mod engine;
pub mod expr;
pub mod follower;
pub mod render;
pub mod runner;
pub mod runs;
pub mod schedule;
pub mod send;
pub mod trial;
pub mod triggers;

pub use check::{Problem, check_flow};
pub use definition::{Flow, Step, StepKind, Trigger};
pub use runs::Flows;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod tests;
