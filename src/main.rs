//! The `caputchin-forwarder` binary: parses the command line, reads `.env`, validates the
//! settings, sets up logging, and runs the command through the library's [`cli`] module. `serve`
//! is the default command.

use std::process::ExitCode;

use caputchin_forwarder::cli::{self, Cli, Command};
use caputchin_forwarder::config::{LogFormat, Settings};
use clap::Parser as _;

fn main() -> ExitCode {
    // Read before parsing: the settings' flags fall back to the variables `.env` sets. A missing
    // .env is normal; any other problem with it is worth knowing, once logging is up.
    let dotenv = dotenvy::dotenv();
    let parsed = Cli::parse();
    let settings = match Settings::from_args(&parsed.settings) {
        Ok(settings) => settings,
        Err(e) => {
            // Logging is not set up yet (its format is a setting); exit 2 like a usage error.
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let format = settings.log_format;
    cli::logging::init(format);
    if let Err(e) = dotenv
        && !e.not_found()
    {
        tracing::warn!(error = %e, "could not read .env");
    }
    match cli::run(settings, parsed.command.unwrap_or(Command::Serve)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // In JSON mode every line on standard error stays one JSON object.
            match format {
                LogFormat::Text => eprintln!("error: {e:#}"),
                LogFormat::Json => tracing::error!(error = format!("{e:#}"), "command failed"),
            }
            ExitCode::FAILURE
        }
    }
}
