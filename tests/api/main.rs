//! Integration tests: the real server on port 0 with a temporary database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cap;
mod caputchin_widget;
mod cli;
mod dashboard;
mod egress;
mod email;
mod form;
mod helpers;
mod management;
mod management_sites;
mod metrics;
mod newcomer;
mod proxy;
mod receiver;
mod reliability;
mod security;
mod siteverify;
mod smtp;
mod verifiers;
