//! Logging: one `tracing` subscriber, human-readable or JSON, on standard error
//! (standard output is kept for the values admin commands print).
//!
//! Every log line is one line whatever the values in it say (CONTRACT §9): the pretty
//! format writes every field through [`escape_controls`], and the JSON format escapes
//! control characters inside its strings by construction. This is the one place where
//! values that come from a request or the database are made safe for the log.

use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::format::{FieldFn, Writer, debug_fn};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};

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
            .fmt_fields(escaping_fields())
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

/// The pretty format's field writer: `message name=value name=value`, every value
/// (the message included) with its control characters escaped, so that no value can
/// end the line or start a forged one.
fn escaping_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    let field: FieldFn<_> = debug_fn(
        |writer: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn fmt::Debug| {
            let mut escaped = EscapingWriter(writer);
            if field.name() != "message" {
                write!(escaped, "{}=", field.name().trim_start_matches("r#"))?;
            }
            write!(escaped, "{value:?}")
        },
    );
    field.delimited(" ")
}

/// Writes through to `0`, escaping control characters on the way.
struct EscapingWriter<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.write_str(&escape_controls(text))
    }
}

/// `text` with every control character (and the Unicode line and paragraph separators)
/// written as an escape: `\n`, `\r`, `\t`, or `\u{..}`. Other characters are kept.
#[must_use]
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let needs_escape = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(c));
            }
            c => escaped.push(c),
        }
    }
    std::borrow::Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, PoisonError};

    use super::*;

    #[test]
    fn a_filter_that_does_not_parse_is_refused_with_a_reason() {
        let result = init_with_writer("info,=[", LogFormat::Pretty, std::io::sink);

        assert!(result.is_err_and(|reason| reason.contains("invalid log filter")));
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_is_kept() {
        assert_eq!(escape_controls("Acme"), "Acme");
        assert_eq!(escape_controls("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape_controls("\u{1b}[31m\u{0}"), "\\u{1b}[31m\\u{0}");
        assert_eq!(escape_controls("x\u{2028}y\u{85}"), "x\\u{2028}y\\u{85}");
        assert_eq!(escape_controls("Zoë & Co"), "Zoë & Co");
    }

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned()
        }
    }

    /// Logs one hostile event and one hostile span in `format`; returns the output.
    fn log_hostile_values(format: LogFormat) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false);
        let forged = "x\nINFO to=victim@example.com token=FORGED\r\u{1b}[2K";
        let log = || {
            let span = tracing::info_span!("request", path = %forged);
            let _entered = span.enter();
            tracing::info!(subject = %forged, debugged = ?forged, "sent {forged}");
        };
        match format {
            LogFormat::Pretty => {
                tracing::subscriber::with_default(
                    builder.fmt_fields(escaping_fields()).finish(),
                    log,
                );
            }
            LogFormat::Json => {
                tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), log);
            }
        }
        captured.text()
    }

    #[test]
    fn a_value_with_line_breaks_stays_on_its_line_in_both_formats() {
        for format in [LogFormat::Pretty, LogFormat::Json] {
            let output = log_hostile_values(format);

            assert_eq!(output.lines().count(), 1, "{format:?}: {output}");
            assert!(!output.contains('\r'), "{format:?}: {output}");
            assert!(!output.contains('\u{1b}'), "{format:?}: {output}");
            assert!(output.contains("token=FORGED"), "{format:?}: {output}");
        }
    }

    #[test]
    fn the_pretty_format_writes_escaped_values_by_name() {
        let output = log_hostile_values(LogFormat::Pretty);

        assert!(
            output.contains("subject=x\\nINFO to=victim@example.com token=FORGED\\r\\u{1b}[2K"),
            "{output}"
        );
        assert!(output.contains("sent x\\nINFO"), "{output}");
        assert!(output.contains("path=x\\nINFO"), "{output}");
    }
}
