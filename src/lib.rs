//! Ringback: a missed phone call becomes a WhatsApp conversation.
//!
//! Map of the crate, in the order a call travels through it:
//!
//! - [`inbound`]: webhooks from Meta, Twilio and any PBX are verified, parsed into
//!   [`inbound::InboundEvent`]s (pure parsing, no I/O) and committed by the
//!   [`ingestor::Ingestor`] before they are acknowledged.
//! - [`telephony`]: sources that are not webhooks — Ringback's own SIP missed-call number and
//!   clients of Asterisk (AMI) and FreeSWITCH (event socket) — feeding the same ingestor.
//! - [`calling`]: WhatsApp Business Calling — call permissions, their limits, business-
//!   initiated calls and rejecting ringing calls.
//! - [`processor`]: a worker that reads committed events in order and applies the domain rules:
//!   [`missed_call`] (is this a missed call, may we answer it) and [`reply`] (template or
//!   free-form, inside or outside the [`window`]).
//! - [`outbox`]: every outgoing message is a row before it is a request; one lane per sending
//!   number claims rows and calls the [`cloud_api`].
//! - [`sandbox`]: a local emulator of the Cloud API, used by the demo, the tests and the
//!   benchmarks.
//! - [`message`]: the life of an outgoing message — which state may follow which, and what an
//!   attempt's outcome does — the rules every store backend applies.
//! - [`store`]: every durable fact goes through it: one trait per concept, with the SQLite and
//!   PostgreSQL implementations.
//! - [`events`] and [`conversation`]: what happened, told to other systems. Facts are journaled
//!   in the same transactions as what they describe; the conversation tracker places them in
//!   conversations and publishes them as events, which [`outbound_webhooks`] delivers, signed.
//! - [`flows`]: automations written as files (trigger, steps), read and checked before they run.
//! - [`links`]: click-to-chat links (wa.me, the app's deep link, QR codes, tracked short
//!   links whose first message is attributed to them).
//! - [`sender_status`]: whether each sending number can send.
//! - [`retention`]: a worker that prunes old rows in small batches so the database stops growing.
//! - [`http`]: the axum router (webhooks, API, health, metrics); [`app`] wires everything and
//!   runs it; [`cli`] is the command line.
#![forbid(unsafe_code)]

pub mod api_keys;
pub mod app;
pub mod assistants;
pub mod bench;
pub mod calling;
pub mod cli;
pub mod cloud_api;
pub mod cluster;
pub mod config;
pub mod consent;
pub mod conversation;
pub mod events;
pub mod flows;
pub mod http;
pub mod inbound;
pub mod ingestor;
pub mod links;
pub mod message;
pub mod missed_call;
pub mod numbers;
pub mod outbound_webhooks;
pub mod outbox;
pub mod phone;
pub mod policy;
pub mod processor;
pub mod reply;
pub mod retention;
pub mod retry;
pub mod sandbox;
pub mod sender_status;
pub mod shutdown;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod telephony;
pub mod template_registry;
pub mod time;
pub mod users;
pub mod window;
