//! Logging: one `tracing` subscriber, human-readable or JSON, on standard error
//! (standard output is kept for the values admin commands print).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` is in `tracing` syntax (`ORGS_LOG`).
///
/// # Errors
/// A one-line reason when the filter does not parse.
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    init_with_writer(filter, format, std::io::stderr)
}

/// Installs the global subscriber writing to `writer` (tests pass a sink). Does nothing
/// when a subscriber is already installed.
///
/// # Errors
/// A one-line reason when the filter does not parse.
pub fn init_with_writer<W>(filter: &str, format: LogFormat, writer: W) -> Result<(), String>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter)
        .map_err(|error| format!("invalid log filter `{filter}`: {error}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // A second installation (tests starting several servers) keeps the first one.
    drop(installed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_that_does_not_parse_is_refused_with_a_reason() {
        let result = init_with_writer("info,=[", LogFormat::Pretty, std::io::sink);

        assert!(result.is_err_and(|reason| reason.contains("invalid log filter")));
    }
}
