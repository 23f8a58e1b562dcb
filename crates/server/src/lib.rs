//! The llm-analytics server: configuration, wiring, admin commands and serving. `main`
//! only parses the command line and calls into here.

pub mod admin;
pub mod cli;
pub mod config;
pub mod http_server;
pub mod memory;
pub mod serve;
pub mod telemetry;
pub mod wiring;
pub mod worker;
