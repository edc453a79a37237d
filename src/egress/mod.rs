//! Egress: everything about where the forwarder may send requests (SPEC §5).

pub mod policy;
pub mod resolve;
pub mod webhook_url;
