//! Caputchin Forwarder: a self-hostable, Caputchin-compatible hosted form forwarder.
//!
//! The modules are declared in layers, each importing only the ones before it (see
//! `ARCHITECTURE.md`): foundations ([`ids`], [`clock`], [`time`], [`fields`], [`refusal`],
//! [`credentials`], [`relay`], [`tls`]); storage ([`store`]); rules and records ([`keys`], [`accounts`], [`config`],
//! [`egress`], [`captcha`], [`sites`]); delivery and counting ([`delivery`], [`metrics`],
//! [`stats`]); the [`services`] every surface shares; the use cases ([`submission`], the form
//! pipeline, and [`test_delivery`]); and the surfaces: the HTTP handlers ([`web`]), the server
//! ([`app`]) and the command line ([`cli`]).

pub mod access_tokens;
pub mod accounts;
pub mod app;
pub mod captcha;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod egress;
pub mod fields;
pub mod ids;
pub mod keys;
pub mod metrics;
pub mod refusal;
pub mod relay;
pub mod services;
pub mod sites;
pub mod stats;
pub mod store;
pub mod submission;
pub mod test_delivery;
pub mod time;
pub mod tls;
pub mod web;
