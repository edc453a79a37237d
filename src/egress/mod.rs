//! Egress: everything about where the forwarder may send requests (SPEC §5), and how it names
//! itself when it does.

pub mod policy;
pub mod resolve;
pub mod webhook_url;

/// The `user-agent` of every outbound request: webhooks (the contract) and remote verifiers.
pub const USER_AGENT: &str = "Caputchin-Forwarder/0.1";
