//! Wiring and serving: the one place that names concrete adapters. It picks the
//! storage from the database URL, builds the use-case services over it, runs the first
//! start's bootstrap, the outbox worker and the HTTP server, and stops them gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use adapters_postgres::{Pooler, PostgresSettings, PostgresStorage};
use adapters_smtp::{LogMailer, SmtpMailer};
use adapters_sqlite::SqliteStorage;
use domain::Duration;
use ports::inbound::{Bootstrapped, OperatorUseCases, UseCaseError};
use ports::outbound::{
    Clock, DeliveryQueue, EventRepository, IdempotencyStore, InvitationRepository, Mailer,
    MemberRepository, OptOutRepository, OrganizationRepository, Outbox, RateLimitStore,
    StorageError, StorageHealth, UserRepository, WebhookRepository,
};

use crate::config::{DatabasePooler, DatabaseUrl};
use crate::connections::ConnectionLimits;
use crate::delivery::{DeliveryPolicy, DeliveryWorker};
use crate::security::{Argon2PasswordHasher, HashingSettings, OsSecretGenerator, SystemClock};
use crate::usecases::{
    AbuseLimits, AuthService, BootstrapSettings, EventService, HealthService, IdempotencyService,
    IdempotencySettings, InvitationPorts, InvitationService, InvitationSettings, KeyUseBatch,
    MemberService, OperatorService, OptOutService, OrganizationService, WebhookService,
};
use crate::webhooks::{WebhookPolicy, WebhookWorker};
use adapters_webhook::HttpWebhookSender;

/// The most PostgreSQL connections one process opens.
const POSTGRES_MAX_CONNECTIONS: u32 = 16;
/// How long a stop may take in all, requests in flight (`ConnectionLimits::drain`) and
/// background tasks included, before the process exits anyway (CONTRACT §9: 15 s).
const SHUTDOWN_GRACE: StdDuration = StdDuration::from_secs(13);
/// How long an unfinished idempotent request holds its key: the request deadline, which
/// bounds how long the request runs, plus a margin. A claim older than this was left by
/// a process that died, and a retry takes it over (`docs/idempotency.md`).
const IDEMPOTENCY_LEASE_MARGIN: StdDuration = StdDuration::from_secs(30);

/// Why the service could not start. Each variant keeps what went wrong as its
/// [`source`](std::error::Error::source); [`ports::ErrorChain`] writes it all.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database {url}")]
    Database {
        /// The URL, without password.
        url: String,
        /// What went wrong.
        source: StorageError,
    },
    /// The SQLite file's directory could not be made.
    #[error("cannot create {path}")]
    Directory {
        /// The directory.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The address could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The SMTP configuration is wrong.
    #[error("{0}")]
    Smtp(String),
    /// The webhook sender could not be built.
    #[error("webhooks: {0}")]
    Webhooks(String),
    /// The first start's bootstrap failed.
    #[error("bootstrap failed")]
    Bootstrap(#[source] UseCaseError),
}

/// The driven storage ports of one database.
#[derive(Clone)]
pub struct Storage {
    /// Organizations.
    pub organizations: Arc<dyn OrganizationRepository>,
    /// Users and credentials.
    pub users: Arc<dyn UserRepository>,
    /// Invitations.
    pub invitations: Arc<dyn InvitationRepository>,
    /// Opt-outs.
    pub opt_outs: Arc<dyn OptOutRepository>,
    /// Members.
    pub members: Arc<dyn MemberRepository>,
    /// The audit log.
    pub events: Arc<dyn EventRepository>,
    /// Abuse-limit events.
    pub limits: Arc<dyn RateLimitStore>,
    /// The e-mail outbox.
    pub outbox: Arc<dyn Outbox>,
    /// Webhooks.
    pub webhooks: Arc<dyn WebhookRepository>,
    /// The webhook delivery queue.
    pub deliveries: Arc<dyn DeliveryQueue>,
    /// Idempotency keys and kept responses.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Readiness and pool usage.
    pub health: Arc<dyn StorageHealth>,
}

impl Storage {
    fn of<S>(storage: S) -> Self
    where
        S: OrganizationRepository
            + UserRepository
            + InvitationRepository
            + OptOutRepository
            + MemberRepository
            + EventRepository
            + RateLimitStore
            + Outbox
            + WebhookRepository
            + DeliveryQueue
            + IdempotencyStore
            + StorageHealth
            + Clone
            + 'static,
    {
        Self {
            organizations: Arc::new(storage.clone()),
            users: Arc::new(storage.clone()),
            invitations: Arc::new(storage.clone()),
            opt_outs: Arc::new(storage.clone()),
            members: Arc::new(storage.clone()),
            events: Arc::new(storage.clone()),
            limits: Arc::new(storage.clone()),
            outbox: Arc::new(storage.clone()),
            webhooks: Arc::new(storage.clone()),
            deliveries: Arc::new(storage.clone()),
            idempotency: Arc::new(storage.clone()),
            health: Arc::new(storage),
        }
    }

    /// Opens the database the URL names and applies its migrations.
    ///
    /// # Errors
    /// `StartError` when the database cannot be opened or migrated.
    pub async fn open(url: &DatabaseUrl, pooler: DatabasePooler) -> Result<Self, StartError> {
        Self::open_with(url, pooler, adapters_postgres::DEFAULT_STATEMENT_TIMEOUT).await
    }

    /// As `open`, with PostgreSQL statements cancelled after `statement_timeout`.
    /// SQLite has no statement timeout: its waits for the write lock are bounded by its
    /// busy timeout (`docs/storage.md`).
    ///
    /// # Errors
    /// `StartError` when the database cannot be opened or migrated.
    pub async fn open_with(
        url: &DatabaseUrl,
        pooler: DatabasePooler,
        statement_timeout: StdDuration,
    ) -> Result<Self, StartError> {
        let database_error = |source| StartError::Database {
            url: url.redacted(),
            source,
        };
        match url {
            DatabaseUrl::Sqlite(raw) => {
                if let Some(directory) = url.sqlite_directory() {
                    std::fs::create_dir_all(&directory).map_err(|source| {
                        StartError::Directory {
                            path: directory.display().to_string(),
                            source,
                        }
                    })?;
                }
                let storage = SqliteStorage::connect(raw, ())
                    .await
                    .map_err(database_error)?;
                storage.migrate().await.map_err(database_error)?;
                Ok(Self::of(storage))
            }
            DatabaseUrl::Postgres(raw) => {
                let storage = PostgresStorage::connect(
                    raw,
                    PostgresSettings {
                        max_connections: POSTGRES_MAX_CONNECTIONS,
                        statement_timeout,
                        pooler: match pooler {
                            DatabasePooler::None => Pooler::None,
                            DatabasePooler::Transaction => Pooler::Transaction,
                        },
                    },
                )
                .await
                .map_err(database_error)?;
                storage.migrate().await.map_err(database_error)?;
                Ok(Self::of(storage))
            }
        }
    }
}

/// The settings of a running service.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The base of links inside e-mails.
    pub public_url: String,
    /// The default invitation validity.
    pub invitation_ttl: Duration,
    /// The session validity.
    pub session_ttl: Duration,
    /// The abuse limits.
    pub limits: AbuseLimits,
    /// How many password hashes run at once, and how long a request waits for one.
    pub hashing: HashingSettings,
    /// Whether webhook endpoints may be on private addresses (`ORGS_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// How long idempotency keys and their responses are kept.
    pub idempotency_ttl: Duration,
    /// How often the uses of API keys are written (`ORGS_KEY_USE_FLUSH`).
    pub key_use_flush: StdDuration,
}

/// The default of `ORGS_KEY_USE_FLUSH`.
pub const DEFAULT_KEY_USE_FLUSH: StdDuration = StdDuration::from_secs(5);

/// The use-case services over one storage.
#[derive(Clone)]
pub struct Services {
    /// Authentication.
    pub auth: Arc<AuthService>,
    /// Organizations.
    pub organizations: Arc<OrganizationService>,
    /// Invitations.
    pub invitations: Arc<InvitationService>,
    /// Opt-outs.
    pub opt_outs: Arc<OptOutService>,
    /// Members.
    pub members: Arc<MemberService>,
    /// The audit log.
    pub events: Arc<EventService>,
    /// Webhooks.
    pub webhooks: Arc<WebhookService>,
    /// Readiness and gauges.
    pub health: Arc<HealthService>,
    /// Idempotent retries.
    pub idempotency: Arc<IdempotencyService>,
    /// Operator commands.
    pub operator: Arc<OperatorService>,
    /// The uses of API keys not yet written.
    pub key_uses: Arc<KeyUseBatch>,
}

impl Services {
    /// Builds every service over `storage` with the system clock, OS secrets and Argon2id.
    #[must_use]
    pub fn new(storage: &Storage, settings: &ServiceSettings) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let secrets = Arc::new(OsSecretGenerator);
        let hasher = Arc::new(Argon2PasswordHasher::new(settings.hashing));
        let key_uses = Arc::new(KeyUseBatch::new());
        Self {
            auth: Arc::new(AuthService::new(
                storage.users.clone(),
                hasher.clone(),
                secrets.clone(),
                clock.clone(),
                storage.limits.clone(),
                settings.session_ttl,
                settings.limits.login_failures,
                Arc::clone(&key_uses),
            )),
            organizations: Arc::new(OrganizationService::new(
                storage.organizations.clone(),
                clock.clone(),
            )),
            invitations: Arc::new(InvitationService::new(
                InvitationPorts {
                    organizations: storage.organizations.clone(),
                    users: storage.users.clone(),
                    invitations: storage.invitations.clone(),
                    hasher: hasher.clone(),
                    secrets: secrets.clone(),
                    clock: clock.clone(),
                },
                InvitationSettings {
                    public_url: settings.public_url.clone(),
                    default_ttl: settings.invitation_ttl,
                    per_recipient: settings.limits.invites_per_recipient,
                    per_organization: settings.limits.invites_per_organization,
                },
            )),
            opt_outs: Arc::new(OptOutService::new(
                storage.organizations.clone(),
                storage.opt_outs.clone(),
                clock.clone(),
            )),
            members: Arc::new(MemberService::new(
                storage.organizations.clone(),
                storage.members.clone(),
                clock.clone(),
                secrets.clone(),
            )),
            events: Arc::new(EventService::new(
                storage.organizations.clone(),
                storage.events.clone(),
            )),
            webhooks: Arc::new(WebhookService::new(
                storage.organizations.clone(),
                storage.webhooks.clone(),
                secrets.clone(),
                clock.clone(),
                settings.webhook_allow_private,
            )),
            health: Arc::new(HealthService::new(
                storage.health.clone(),
                storage.outbox.clone(),
                storage.deliveries.clone(),
            )),
            idempotency: Arc::new(IdempotencyService::new(
                storage.idempotency.clone(),
                clock.clone(),
                IdempotencySettings {
                    ttl: settings.idempotency_ttl,
                    lease: idempotency_lease(),
                },
            )),
            operator: Arc::new(OperatorService::new(
                storage.organizations.clone(),
                storage.users.clone(),
                hasher,
                secrets,
                clock,
                BootstrapSettings::default(),
            )),
            key_uses,
        }
    }

    /// The HTTP router over these services.
    pub fn router(&self) -> axum::Router {
        adapters_http::router(adapters_http::AppState {
            auth: self.auth.clone(),
            organizations: self.organizations.clone(),
            invitations: self.invitations.clone(),
            opt_outs: self.opt_outs.clone(),
            members: self.members.clone(),
            events: self.events.clone(),
            webhooks: self.webhooks.clone(),
            health: self.health.clone(),
            idempotency: self.idempotency.clone(),
        })
    }
}

/// How long an unfinished idempotent request holds its key (`IDEMPOTENCY_LEASE_MARGIN`).
fn idempotency_lease() -> Duration {
    Duration::from_std(adapters_http::REQUEST_DEADLINE + IDEMPOTENCY_LEASE_MARGIN)
        .unwrap_or(Duration::seconds(60))
}

/// Builds the mailer: SMTP when a URL is given, the log otherwise.
///
/// # Errors
/// `StartError::Smtp` for a bad URL or sender.
pub fn mailer(smtp_url: Option<&str>, from: &str) -> Result<Arc<dyn Mailer>, StartError> {
    match smtp_url {
        Some(url) => SmtpMailer::from_url(url, from, StdDuration::from_secs(30))
            .map(|mailer| Arc::new(mailer) as Arc<dyn Mailer>)
            .map_err(|error| StartError::Smtp(error.to_string())),
        None => Ok(Arc::new(LogMailer)),
    }
}

/// What `start` needs.
pub struct StartOptions {
    /// Where the database is.
    pub database_url: DatabaseUrl,
    /// What stands between the service and PostgreSQL.
    pub pooler: DatabasePooler,
    /// Where to listen (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The service settings.
    pub settings: ServiceSettings,
    /// Where e-mails go.
    pub mailer: Arc<dyn Mailer>,
    /// How the outbox worker paces itself.
    pub delivery: DeliveryPolicy,
    /// The HTTP connections' time limits.
    pub connections: ConnectionLimits,
    /// How long one SQL statement may run (PostgreSQL).
    pub statement_timeout: StdDuration,
    /// How long audit-log events are kept (`ORGS_AUDIT_RETENTION`).
    pub audit_retention: Duration,
    /// How the webhook worker paces itself and retries.
    pub webhooks: WebhookPolicy,
}

/// A service that is up: its address, the first start's credentials if this start
/// made them, and the handle to stop it.
pub struct RunningServer {
    /// The address it listens on.
    pub address: SocketAddr,
    /// The first organization and administrator, when this start created them.
    pub bootstrapped: Option<Bootstrapped>,
    /// The storage it serves, for checks that look behind the API.
    pub storage: Storage,
    stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    worker: JoinHandle<()>,
    webhook_worker: JoinHandle<()>,
    upkeep: JoinHandle<()>,
    key_uses: JoinHandle<()>,
}

impl RunningServer {
    /// Asks the server to stop: it stops accepting, lets requests in flight finish
    /// within `ConnectionLimits::drain` (then drops their connections) and stops the
    /// outbox worker.
    pub fn request_stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the server and the worker have stopped.
    ///
    /// # Errors
    /// The server's I/O error, if serving failed.
    pub async fn wait(self) -> std::io::Result<()> {
        let served = match self.server.await {
            Ok(result) => result,
            Err(error) => Err(std::io::Error::other(error)),
        };
        self.stop.cancel();
        if let Err(error) = self.worker.await {
            tracing::error!(error.message = %error, "the outbox worker ended abnormally");
        }
        if let Err(error) = self.webhook_worker.await {
            tracing::error!(error.message = %error, "the webhook worker ended abnormally");
        }
        if let Err(error) = self.upkeep.await {
            tracing::error!(error.message = %error, "the upkeep task ended abnormally");
        }
        if let Err(error) = self.key_uses.await {
            tracing::error!(error.message = %error, "the key-use writer ended abnormally");
        }
        served
    }

    /// Stops the server and waits for it.
    ///
    /// # Errors
    /// The server's I/O error, if serving failed.
    pub async fn stop(self) -> std::io::Result<()> {
        self.request_stop();
        self.wait().await
    }
}

/// Opens and migrates the database, bootstraps an empty one, binds the address, and
/// starts serving and delivering e-mail in the background.
///
/// # Errors
/// `StartError` for anything that prevents serving.
pub async fn start(options: StartOptions) -> Result<RunningServer, StartError> {
    let storage = Storage::open_with(
        &options.database_url,
        options.pooler,
        options.statement_timeout,
    )
    .await?;
    tracing::info!(database = %options.database_url.redacted(), "database ready");
    let services = Services::new(&storage, &options.settings);

    let bootstrapped = services
        .operator
        .bootstrap()
        .await
        .map_err(StartError::Bootstrap)?;

    let listener =
        TcpListener::bind(options.listen)
            .await
            .map_err(|source| StartError::Listen {
                address: options.listen,
                source,
            })?;
    let address = listener.local_addr().map_err(|source| StartError::Listen {
        address: options.listen,
        source,
    })?;

    let stop = CancellationToken::new();
    let outbox_retention = options.delivery.retention;
    let worker = DeliveryWorker::new(
        storage.outbox.clone(),
        options.mailer,
        Arc::new(SystemClock),
        options.delivery,
    );
    let worker = tokio::spawn(worker.run(stop.clone()));
    let webhook_retention = options.webhooks.retention;
    let sender = HttpWebhookSender::new(
        options.webhooks.timeout,
        options.settings.webhook_allow_private,
    )
    .map_err(|error| StartError::Webhooks(error.to_string()))?;
    let render: crate::webhooks::EventRenderer = Arc::new(|event: &domain::audit::Event| {
        serde_json::to_value(adapters_http::events::EventDto::from(event.clone()))
            .unwrap_or(serde_json::Value::Null)
    });
    let webhook_worker = tokio::spawn(
        WebhookWorker::new(
            storage.deliveries.clone(),
            Arc::new(sender),
            Arc::new(SystemClock),
            render,
            options.webhooks,
        )
        .run(stop.clone()),
    );
    let upkeep = tokio::spawn(crate::maintenance::run(
        crate::maintenance::Upkeep {
            limits_store: storage.limits.clone(),
            users: storage.users.clone(),
            clock: Arc::new(SystemClock),
            limits: options.settings.limits,
            outbox: storage.outbox.clone(),
            outbox_retention,
            idempotency: storage.idempotency.clone(),
            events: storage.events.clone(),
            audit_retention: options.audit_retention,
            deliveries: storage.deliveries.clone(),
            webhook_retention,
        },
        stop.clone(),
    ));
    let key_uses = tokio::spawn(crate::maintenance::flush_key_uses(
        services.key_uses.clone(),
        storage.users.clone(),
        options.settings.key_use_flush,
        stop.clone(),
    ));

    let server = tokio::spawn(crate::connections::serve(
        listener,
        services.router(),
        options.connections,
        stop.clone(),
    ));
    tracing::info!(%address, "listening");

    Ok(RunningServer {
        address,
        bootstrapped,
        storage,
        stop,
        server,
        worker,
        webhook_worker,
        upkeep,
        key_uses,
    })
}

/// How long a graceful stop may take before the process gives up waiting.
#[must_use]
pub fn shutdown_grace() -> StdDuration {
    SHUTDOWN_GRACE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_claim_outlives_the_longest_request() {
        let lease = idempotency_lease();

        assert_eq!(lease, Duration::seconds(60));
        assert!(
            lease
                .to_std()
                .is_ok_and(|lease| lease > adapters_http::REQUEST_DEADLINE)
        );
    }
}
