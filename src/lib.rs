//! Caputchin Forwarder: a self-hostable, Caputchin-compatible hosted form forwarder.
//!
//! The data flows through the modules in this order: settings ([`config`]), storage ([`store`]),
//! accounts and sites ([`accounts`], [`sites`]), verification ([`captcha`]), egress rules
//! ([`egress`]), and the HTTP surface ([`web`]) assembled by [`app`]. The command line ([`cli`])
//! serves it or runs one command against the same state. Beside the flow, [`time`] holds the UTC
//! day arithmetic and date texts the stages share.

pub mod accounts;
pub mod app;
pub mod captcha;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod egress;
pub mod fields;
pub mod ids;
pub mod keys;
pub mod metrics;
pub mod refusal;
pub mod services;
pub mod sites;
pub mod stats;
pub mod store;
pub mod submission;
pub mod test_delivery;
pub mod time;
pub mod web;
