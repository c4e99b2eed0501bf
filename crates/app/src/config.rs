//! The command line and the configuration, read once at start-up into typed values.
//!
//! Every flag also reads an `ORGS_…` environment variable (CONTRACT §8).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use domain::limits::RateLimit;
use domain::webhook::RetrySchedule;
use domain::{Duration, Role};

use crate::security::HashingSettings;
use crate::usecases::AbuseLimits;

/// The organizations service.
#[derive(Debug, Parser)]
#[command(
    name = "orgs",
    version,
    about = "The organizations service",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Serve options, for when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
// Parsed once at start-up and moved once: the size of the serve variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Operator commands.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    #[arg(
        long = "database-url",
        env = "ORGS_DATABASE_URL",
        default_value = "sqlite://data/orgs.db",
        hide_env_values = true,
        value_parser = DatabaseUrlParser
    )]
    pub database_url: DatabaseUrl,

    /// What stands between the service and PostgreSQL: `none`, or `transaction` for a
    /// pooler in transaction mode such as PgBouncer's `pool_mode = transaction`, under
    /// which nothing is kept in a database session (`docs/scaling.md`). SQLite ignores it.
    #[arg(
        long = "database-pooler",
        env = "ORGS_DATABASE_POOLER",
        value_enum,
        default_value_t = DatabasePooler::None
    )]
    pub pooler: DatabasePooler,
}

/// What stands between the service and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DatabasePooler {
    /// PostgreSQL itself, or a pooler in session mode: connections keep their session.
    #[default]
    None,
    /// A pooler in transaction mode: a server connection serves one transaction at a time.
    Transaction,
}

/// `orgs serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// The address to listen on.
    #[arg(long, env = "ORGS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The SMTP server, e.g. `smtp://127.0.0.1:1025`; unset → e-mails are written to the log.
    #[arg(long = "smtp-url", env = "ORGS_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of the service's e-mails.
    #[arg(
        long = "mail-from",
        env = "ORGS_MAIL_FROM",
        default_value = "orgs <noreply@localhost>"
    )]
    pub mail_from: String,

    /// The base of links inside e-mails; default `http://<listen address>`.
    #[arg(long = "public-url", env = "ORGS_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// How long an invitation sent without `expires_in_days` stays open.
    #[arg(long = "invitation-ttl", env = "ORGS_INVITATION_TTL", default_value = "7d", value_parser = domain::parse_duration)]
    pub invitation_ttl: Duration,

    /// How long a session token works.
    #[arg(long = "session-ttl", env = "ORGS_SESSION_TTL", default_value = "12h", value_parser = domain::parse_duration)]
    pub session_ttl: Duration,

    /// Failed logins allowed per identifier in a window, as `COUNT/DURATION`.
    #[arg(long = "login-failures", env = "ORGS_LOGIN_FAILURES", default_value = "10/15m", value_parser = RateLimit::parse)]
    pub login_failures: RateLimit,

    /// Invitation e-mails allowed per recipient address in a window.
    #[arg(long = "invites-per-recipient", env = "ORGS_INVITES_PER_RECIPIENT", default_value = "5/1h", value_parser = RateLimit::parse)]
    pub invites_per_recipient: RateLimit,

    /// Invitation e-mails allowed per organization in a window.
    #[arg(long = "invites-per-organization", env = "ORGS_INVITES_PER_ORGANIZATION", default_value = "200/1h", value_parser = RateLimit::parse)]
    pub invites_per_organization: RateLimit,

    /// How long an `Idempotency-Key` and the response it replays are kept (CONTRACT §12).
    #[arg(long = "idempotency-ttl", env = "ORGS_IDEMPOTENCY_TTL", default_value = "24h", value_parser = domain::parse_duration)]
    pub idempotency_ttl: Duration,
    /// How often the uses of API keys are written (their `last_used_at`), at most 60s.
    #[arg(long = "key-use-flush", env = "ORGS_KEY_USE_FLUSH", hide_env_values = true, default_value = "5s", value_parser = parse_key_use_flush)]
    pub key_use_flush: Duration,

    /// How long delivered and dead e-mails stay in the outbox before they are deleted.
    #[arg(long = "outbox-retention", env = "ORGS_OUTBOX_RETENTION", default_value = "7d", value_parser = domain::parse_duration)]
    pub outbox_retention: Duration,
    /// How long audit-log events are kept before they are deleted.
    #[arg(long = "audit-retention", env = "ORGS_AUDIT_RETENTION", default_value = "365d", value_parser = domain::parse_duration)]
    pub audit_retention: Duration,
    /// How long delivered and failed webhook deliveries are kept before they are deleted.
    #[arg(long = "webhook-retention", env = "ORGS_WEBHOOK_RETENTION", default_value = "30d", value_parser = domain::parse_duration)]
    pub webhook_retention: Duration,
    /// Whether webhook endpoints may be on loopback, private or link-local addresses
    /// (for tests and closed networks only).
    #[arg(long = "webhook-allow-private", env = "ORGS_WEBHOOK_ALLOW_PRIVATE", default_value = "false", action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// The waits between webhook delivery attempts, a comma list of durations.
    #[arg(long = "webhook-retry", env = "ORGS_WEBHOOK_RETRY", default_value = "5s,5m,30m,2h,5h,10h,10h", value_parser = RetrySchedule::parse)]
    pub webhook_retry: RetrySchedule,
    /// How long one SQL statement may run before the database cancels it (PostgreSQL's
    /// `statement_timeout` on every connection; SQLite has none, see `docs/storage.md`).
    #[arg(long = "statement-timeout", env = "ORGS_STATEMENT_TIMEOUT", default_value = "10s", value_parser = domain::parse_duration)]
    pub statement_timeout: Duration,

    /// The log filter, in `tracing` syntax (e.g. `info,orgs=debug`).
    #[arg(long = "log", env = "ORGS_LOG", default_value = "info")]
    pub log: String,

    /// The log format.
    #[arg(long = "log-format", env = "ORGS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Password hashes computed at once (each holds 19 MiB while it runs); default: the
    /// number of CPUs.
    #[arg(long = "hash-concurrency", env = "ORGS_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<std::num::NonZeroUsize>,

    /// How long a login or acceptance waits for a hashing slot before it gets `503`.
    #[arg(long = "hash-wait", env = "ORGS_HASH_WAIT", default_value = "5s", value_parser = domain::parse_duration)]
    pub hash_wait: Duration,
}

/// The longest `ORGS_KEY_USE_FLUSH`: `last_used_at` may lag by at most a minute
/// (CONTRACT §11).
pub const KEY_USE_FLUSH_MAX_SECONDS: i64 = 60;

/// Parses `ORGS_KEY_USE_FLUSH`: a duration of at most 60 s.
///
/// # Errors
/// A bad duration, or a longer one.
pub fn parse_key_use_flush(text: &str) -> Result<Duration, String> {
    let duration = domain::parse_duration(text).map_err(|error| error.to_string())?;
    if duration > Duration::seconds(KEY_USE_FLUSH_MAX_SECONDS) {
        return Err(format!(
            "`{}` is too long: at most {KEY_USE_FLUSH_MAX_SECONDS}s",
            text.trim()
        ));
    }
    Ok(duration)
}

impl ServeArgs {
    /// The bounds of password hashing.
    #[must_use]
    pub fn hashing(&self) -> HashingSettings {
        let defaults = HashingSettings::default();
        HashingSettings {
            concurrency: self
                .hash_concurrency
                .map_or(defaults.concurrency, std::num::NonZeroUsize::get),
            max_wait: self.hash_wait.to_std().unwrap_or(defaults.max_wait),
        }
    }
}

impl ServeArgs {
    /// The base of links in e-mails.
    #[must_use]
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }
}

impl ServeArgs {
    /// The abuse limits.
    #[must_use]
    pub fn limits(&self) -> AbuseLimits {
        AbuseLimits {
            login_failures: self.login_failures,
            invites_per_recipient: self.invites_per_recipient,
            invites_per_organization: self.invites_per_organization,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `orgs admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization; prints its id.
    CreateOrganization {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// Its name.
        #[arg(long)]
        name: String,
        /// Its contact address.
        #[arg(long = "contact-email")]
        contact_email: String,
        /// Its parent's id, for a child.
        #[arg(long)]
        parent: Option<i64>,
        /// Allow attachments.
        #[arg(long = "can-attach-files")]
        can_attach_files: bool,
        /// Allow an external opt-out message.
        #[arg(long = "can-external-optout")]
        can_external_optout: bool,
    },
    /// Create a user; prints its API key.
    CreateUser {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// Its organization's id.
        #[arg(long)]
        organization: i64,
        /// Its e-mail identifier.
        #[arg(long)]
        identifier: String,
        /// Its role: administrators, managers, users or collaborators.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Its password, if it may log in with one (at least 8 characters).
        #[arg(long)]
        password: Option<String>,
    },
    /// Set an organization's flags.
    SetFlags {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// The organization's id.
        #[arg(long)]
        organization: i64,
        /// true or false.
        #[arg(long = "can-attach-files", action = clap::ArgAction::Set)]
        can_attach_files: Option<bool>,
        /// true or false.
        #[arg(long = "can-external-optout", action = clap::ArgAction::Set)]
        can_external_optout: Option<bool>,
    },
    /// Restore an archived organization.
    RestoreOrganization {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// The organization's id.
        #[arg(long)]
        organization: i64,
    },
    /// Erase the organizations archived strictly before a date; prints how many.
    PurgeOrganizations {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// An ISO 8601 date (`2026-01-31`, midnight UTC) or date-time.
        #[arg(long = "archived-before", value_parser = parse_instant)]
        archived_before: domain::Timestamp,
    },
}

/// Which database, from the URL's scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://…`: the embedded default.
    Sqlite(String),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl DatabaseUrl {
    /// The URL as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(url) | DatabaseUrl::Postgres(url) => url,
        }
    }

    /// The URL without any password, for logs.
    #[must_use]
    pub fn redacted(&self) -> String {
        redact_url(self.as_str())
    }

    /// For SQLite, the directory the file lives in, to create when missing.
    #[must_use]
    pub fn sqlite_directory(&self) -> Option<PathBuf> {
        let DatabaseUrl::Sqlite(url) = self else {
            return None;
        };
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        PathBuf::from(path)
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .map(PathBuf::from)
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let scheme = value.split_once(':').map(|(scheme, _)| scheme);
        match scheme {
            Some("sqlite") => Ok(DatabaseUrl::Sqlite(value.to_owned())),
            Some("postgres" | "postgresql") => Ok(DatabaseUrl::Postgres(value.to_owned())),
            _ => Err(format!(
                "unsupported database URL `{}`: use sqlite://PATH or postgres://…",
                redact_url(value)
            )),
        }
    }
}

/// Parses `--database-url` without echoing a refused value: clap's own message would
/// repeat the URL, password included.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUrlParser;

impl clap::builder::TypedValueParser for DatabaseUrlParser {
    type Value = DatabaseUrl;

    fn parse_ref(
        &self,
        command: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<DatabaseUrl, clap::Error> {
        let refuse = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{reason}\n"),
            )
            .with_cmd(command)
        };
        value
            .to_str()
            .ok_or_else(|| refuse("the database URL is not UTF-8".to_owned()))?
            .parse()
            .map_err(refuse)
    }
}

/// `url` with its password (and any `password=` query value) replaced by `***`, for
/// `--help`, logs and error lines (CONTRACT §9): `postgres://orgs:***@db/orgs`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut redacted = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            // The last `@` ends the credentials: a password may hold an unescaped `@`.
            match authority.rsplit_once('@') {
                Some((credentials, host)) => match credentials.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
                    None => head.to_owned(),
                },
                None => head.to_owned(),
            }
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().contains("password") => {
                    format!("{name}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&pairs.join("&"));
    }
    redacted
}

/// Parses a role name.
///
/// # Errors
/// A one-line reason naming the roles.
pub fn parse_role(value: &str) -> Result<Role, String> {
    Role::parse(value).map_err(|_| {
        format!("unknown role `{value}`: use administrators, managers, users or collaborators")
    })
}

/// Parses an ISO 8601 date (midnight UTC) or date-time (with an offset, or UTC without).
///
/// # Errors
/// A one-line reason.
pub fn parse_instant(value: &str) -> Result<domain::Timestamp, String> {
    let value = value.trim();
    if let Ok(instant) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(instant.with_timezone(&chrono::Utc));
    }
    if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(naive.and_utc());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(format!(
        "`{value}` is not an ISO 8601 date (2026-01-31) or date-time (2026-01-31T12:00:00Z)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;

        Cli::command().debug_assert();
    }

    #[test]
    fn the_statement_timeout_is_ten_seconds_unless_set() {
        let default = Cli::try_parse_from(["orgs"]).expect("parsed");
        let set =
            Cli::try_parse_from(["orgs", "serve", "--statement-timeout", "3s"]).expect("parsed");

        assert_eq!(default.serve.statement_timeout, Duration::seconds(10));
        let Some(Command::Serve(set)) = set.command else {
            panic!("serve");
        };
        assert_eq!(set.statement_timeout, Duration::seconds(3));
    }

    #[test]
    fn there_is_no_pooler_unless_one_is_named_for_serve_migrate_and_admin() {
        let default = Cli::try_parse_from(["orgs"]).expect("parsed");
        let migrate = Cli::try_parse_from(["orgs", "migrate", "--database-pooler", "transaction"])
            .expect("parsed");
        let admin = Cli::try_parse_from([
            "orgs",
            "admin",
            "restore-organization",
            "--organization",
            "2",
            "--database-pooler",
            "transaction",
        ])
        .expect("parsed");
        let unknown = Cli::try_parse_from(["orgs", "migrate", "--database-pooler", "statement"]);

        assert_eq!(default.serve.database.pooler, DatabasePooler::None);
        let Some(Command::Migrate(migrate)) = migrate.command else {
            panic!("migrate");
        };
        assert_eq!(migrate.pooler, DatabasePooler::Transaction);
        let Some(Command::Admin(AdminCommand::RestoreOrganization { database, .. })) =
            admin.command
        else {
            panic!("admin");
        };
        assert_eq!(database.pooler, DatabasePooler::Transaction);
        assert!(unknown.is_err());
    }

    #[test]
    fn durations_and_limit_windows_longer_than_a_year_are_refused_in_one_line() {
        for (flag, value) in [
            ("--session-ttl", "1000000000d"),
            ("--outbox-retention", "366d"),
            ("--login-failures", "10/366d"),
            ("--invites-per-recipient", "5/9999999h"),
        ] {
            let refused = Cli::try_parse_from(["orgs", "serve", flag, value])
                .map(|_| ())
                .map_err(|error| error.to_string());
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|reason| reason.contains("at most 365d") && reason.contains(value)),
                "{flag} {value}: {refused:?}"
            );
        }
        let set = Cli::try_parse_from(["orgs", "serve", "--session-ttl", "365d"]).expect("parsed");
        let Some(Command::Serve(set)) = set.command else {
            panic!("serve");
        };
        assert_eq!(set.session_ttl, Duration::days(365));
    }

    #[test]
    fn passwords_never_show_in_any_redacted_url() {
        for (url, expected) in [
            ("smtp://u:hunter2@h:25", "smtp://u:***@h:25"),
            ("smtps://u:hun@ter2@h:465/x", "smtps://u:***@h:465/x"),
            (
                "smtp://127.0.0.1:1025?tls=required",
                "smtp://127.0.0.1:1025?tls=required",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?user=u&password=hunter2",
                "postgres://h/db?user=u&password=***",
            ),
            ("sqlite://data/orgs.db", "sqlite://data/orgs.db"),
        ] {
            assert_eq!(redact_url(url), expected);
        }
        let refused = "mysql://u:hunter2@h/db".parse::<DatabaseUrl>();
        assert!(refused.is_err_and(|reason| !reason.contains("hunter2")));
    }

    #[test]
    fn no_argument_shows_the_value_of_a_secret_bearing_variable_in_help() {
        use clap::CommandFactory as _;

        fn check(command: &clap::Command, checked: &mut usize) {
            for arg in command.get_arguments() {
                let Some(variable) = arg.get_env().and_then(|name| name.to_str()) else {
                    continue;
                };
                if ["URL", "PASSWORD", "KEY", "SECRET", "TOKEN"]
                    .iter()
                    .any(|word| variable.contains(word))
                    && !variable.ends_with("PUBLIC_URL")
                {
                    *checked += 1;
                    assert!(arg.is_hide_env_values_set(), "{variable}");
                }
            }
            for subcommand in command.get_subcommands() {
                check(subcommand, checked);
            }
        }
        let mut checked = 0;

        check(&Cli::command(), &mut checked);

        assert!(checked >= 2, "the database and SMTP URLs are checked");
    }

    #[test]
    fn the_database_is_chosen_by_the_url_scheme() {
        assert_eq!(
            "sqlite://data/orgs.db".parse(),
            Ok(DatabaseUrl::Sqlite("sqlite://data/orgs.db".to_owned()))
        );
        assert!(matches!(
            "postgres://u@h/db".parse::<DatabaseUrl>(),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            "postgresql://u@h/db".parse::<DatabaseUrl>(),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!("mysql://h/db".parse::<DatabaseUrl>().is_err());
        assert!("nonsense".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn the_sqlite_directory_is_the_files_parent() {
        let url: DatabaseUrl = "sqlite://data/orgs.db".parse().expect("valid");
        let bare: DatabaseUrl = "sqlite://orgs.db".parse().expect("valid");
        let memory: DatabaseUrl = "sqlite::memory:".parse().expect("valid");

        assert_eq!(url.sqlite_directory(), Some(PathBuf::from("data")));
        assert_eq!(bare.sqlite_directory(), None);
        assert_eq!(memory.sqlite_directory(), None);
    }

    #[test]
    fn passwords_never_show_in_a_redacted_url() {
        let url: DatabaseUrl = "postgres://orgs:s3cret@db:5432/orgs"
            .parse()
            .expect("valid");

        assert_eq!(url.redacted(), "postgres://orgs:***@db:5432/orgs");
    }

    #[test]
    fn instants_take_a_date_or_a_date_time() {
        assert_eq!(
            parse_instant("2026-01-31").map(|t| t.to_rfc3339()),
            Ok("2026-01-31T00:00:00+00:00".to_owned())
        );
        assert_eq!(
            parse_instant("2026-01-31T12:30:00+01:00").map(|t| t.to_rfc3339()),
            Ok("2026-01-31T11:30:00+00:00".to_owned())
        );
        assert!(parse_instant("2026-01-31T12:30:00").is_ok());
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn no_subcommand_means_serve_with_the_embedded_default() {
        let cli = Cli::try_parse_from(["orgs"]).expect("parses");

        assert!(cli.command.is_none());
        assert_eq!(
            cli.serve.database.database_url,
            DatabaseUrl::Sqlite("sqlite://data/orgs.db".to_owned())
        );
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cli.serve.public_url(), "http://127.0.0.1:8080");
        assert_eq!(cli.serve.invitation_ttl, Duration::days(7));
        assert_eq!(cli.serve.session_ttl, Duration::hours(12));
        assert_eq!(cli.serve.limits(), AbuseLimits::default());
    }

    #[test]
    fn password_hashing_bounds_default_to_the_cpus_and_five_seconds() {
        let defaults = Cli::try_parse_from(["orgs"]).expect("parses");
        let given = Cli::try_parse_from([
            "orgs",
            "serve",
            "--hash-concurrency",
            "3",
            "--hash-wait",
            "2s",
        ])
        .expect("parses");
        let zero = Cli::try_parse_from(["orgs", "serve", "--hash-concurrency", "0"]);

        assert_eq!(defaults.serve.hashing(), HashingSettings::default());
        assert_eq!(
            defaults.serve.hashing().max_wait,
            std::time::Duration::from_secs(5)
        );
        let Some(Command::Serve(given)) = given.command else {
            panic!("serve");
        };
        assert_eq!(
            given.hashing(),
            HashingSettings {
                concurrency: 3,
                max_wait: std::time::Duration::from_secs(2),
            }
        );
        assert!(zero.is_err());
    }

    #[test]
    fn an_unknown_role_in_an_admin_command_is_refused() {
        let parsed = Cli::try_parse_from([
            "orgs",
            "admin",
            "create-user",
            "--organization",
            "1",
            "--identifier",
            "a@example.com",
            "--role",
            "owners",
        ]);

        assert!(parsed.is_err());
    }

    #[test]
    fn set_flags_takes_explicit_booleans() {
        let cli = Cli::try_parse_from([
            "orgs",
            "admin",
            "set-flags",
            "--organization",
            "2",
            "--can-external-optout",
            "true",
        ])
        .expect("parses");

        let Some(Command::Admin(AdminCommand::SetFlags {
            can_attach_files,
            can_external_optout,
            ..
        })) = cli.command
        else {
            panic!("expected set-flags");
        };
        assert_eq!(can_attach_files, None);
        assert_eq!(can_external_optout, Some(true));
    }

    #[test]
    fn webhooks_refuse_private_addresses_and_retry_seven_times_by_default() {
        let default = Cli::try_parse_from(["orgs"]).expect("parses");
        let given = Cli::try_parse_from([
            "orgs",
            "serve",
            "--webhook-allow-private",
            "true",
            "--webhook-retry",
            "1s,2s",
        ])
        .expect("parses");
        let refused = Cli::try_parse_from(["orgs", "--webhook-retry", "soon"]);

        assert!(!default.serve.webhook_allow_private);
        assert_eq!(default.serve.webhook_retry, RetrySchedule::default());
        let Some(Command::Serve(serve)) = given.command else {
            panic!("expected serve");
        };
        assert!(serve.webhook_allow_private);
        assert_eq!(serve.webhook_retry.attempts(), 3);
        assert!(refused.is_err());
    }

    #[test]
    fn idempotency_keys_live_24_hours_by_default() {
        let default = Cli::try_parse_from(["orgs"]).expect("parses");
        let given =
            Cli::try_parse_from(["orgs", "serve", "--idempotency-ttl", "90s"]).expect("parses");
        let refused = Cli::try_parse_from(["orgs", "--idempotency-ttl", "0s"]);

        assert_eq!(default.serve.idempotency_ttl, Duration::hours(24));
        let Some(Command::Serve(serve)) = given.command else {
            panic!("expected serve");
        };
        assert_eq!(serve.idempotency_ttl, Duration::seconds(90));
        assert!(refused.is_err());
    }

    #[test]
    fn the_audit_retention_is_a_duration_of_365_days_by_default() {
        let default = Cli::try_parse_from(["orgs"]).expect("parses");
        let given =
            Cli::try_parse_from(["orgs", "serve", "--audit-retention", "30d"]).expect("parses");
        let refused = Cli::try_parse_from(["orgs", "--audit-retention", "forever"]);

        assert_eq!(default.serve.audit_retention, Duration::days(365));
        let Some(Command::Serve(serve)) = given.command else {
            panic!("expected serve");
        };
        assert_eq!(serve.audit_retention, Duration::days(30));
        assert!(refused.is_err());
    }

    #[test]
    fn the_webhook_retention_is_a_duration_of_thirty_days_by_default_and_at_most_a_year() {
        let default = Cli::try_parse_from(["orgs"]).expect("parses");
        let given =
            Cli::try_parse_from(["orgs", "serve", "--webhook-retention", "365d"]).expect("parses");
        let too_long = Cli::try_parse_from(["orgs", "--webhook-retention", "366d"]);
        let refused = Cli::try_parse_from(["orgs", "--webhook-retention", "soon"]);

        assert_eq!(default.serve.webhook_retention, Duration::days(30));
        let Some(Command::Serve(serve)) = given.command else {
            panic!("expected serve");
        };
        assert_eq!(serve.webhook_retention, Duration::days(365));
        assert!(too_long.is_err());
        assert!(refused.is_err());
    }

    #[test]
    fn the_outbox_retention_is_a_duration_of_seven_days_by_default() {
        let default = Cli::try_parse_from(["orgs"]).expect("parses");
        let given =
            Cli::try_parse_from(["orgs", "serve", "--outbox-retention", "30d"]).expect("parses");
        let refused = Cli::try_parse_from(["orgs", "--outbox-retention", "soon"]);

        assert_eq!(default.serve.outbox_retention, Duration::days(7));
        let Some(Command::Serve(serve)) = given.command else {
            panic!("expected serve");
        };
        assert_eq!(serve.outbox_retention, Duration::days(30));
        assert!(refused.is_err());
    }

    #[test]
    fn key_uses_are_written_every_five_seconds_by_default_and_at_most_every_minute() {
        let default = Cli::try_parse_from(["orgs"]).expect("parses");
        let given =
            Cli::try_parse_from(["orgs", "serve", "--key-use-flush", "60s"]).expect("parses");
        let too_long = Cli::try_parse_from(["orgs", "--key-use-flush", "61s"]);

        assert_eq!(default.serve.key_use_flush, Duration::seconds(5));
        let Some(Command::Serve(serve)) = given.command else {
            panic!("expected serve");
        };
        assert_eq!(serve.key_use_flush, Duration::seconds(60));
        assert!(too_long.is_err());
    }
}
