//! The submission stage: turning a posted form body into the ordered fields that are forwarded
//! (SPEC §3).

pub mod body;
pub mod envelope;
