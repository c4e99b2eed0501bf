//! Helpers for black-box tests: `spawn_app` starts the real service (the same start-up
//! as `orgs serve`) on a free port with a fresh database and a capturing mailer, and
//! `TestApp` calls it over HTTP.
//!
//! PostgreSQL comes from `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each app gets its own database,
//! dropped when the app is dropped. A PostgreSQL that does not answer fails the test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use rand::Rng as _;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::Connection as _;

use app::config::{DatabasePooler, DatabaseUrl};
use app::connections::ConnectionLimits;
use app::delivery::DeliveryPolicy;
use app::security::HashingSettings;
use app::server::{self, RunningServer, ServiceSettings, StartOptions};
use app::usecases::AbuseLimits;
use app::webhooks::WebhookPolicy;
use domain::mail::OutgoingEmail;
use ports::inbound::OperatorUseCases as _;
use ports::outbound::{MailError, Mailer};

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
    /// A fresh PostgreSQL database reached through PgBouncer in transaction mode (one
    /// pooler per test binary, five server connections per database), with the service's
    /// `transaction` pooler setting.
    PgBouncer,
}

impl Backend {
    /// Whether the database is PostgreSQL, directly or through the pooler.
    #[must_use]
    pub fn is_postgres(self) -> bool {
        matches!(self, Backend::Postgres | Backend::PgBouncer)
    }
}

pub mod pgbouncer;
pub mod receiver;

/// The base PostgreSQL URL tests create their databases from.
#[must_use]
pub fn postgres_base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A mailer that keeps what it is given, for tests to read.
#[derive(Debug, Clone, Default)]
pub struct CapturingMailer {
    sent: Arc<Mutex<Vec<OutgoingEmail>>>,
}

impl CapturingMailer {
    /// Every e-mail sent so far.
    ///
    /// # Panics
    /// If a test thread panicked while holding the list.
    #[must_use]
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.sent.lock().expect("mailer lock").clone()
    }
}

#[async_trait]
impl Mailer for CapturingMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        self.sent.lock().expect("mailer lock").push(email.clone());
        Ok(())
    }
}

/// A PostgreSQL database made for one test, dropped with it.
struct ScratchDatabase {
    base_url: String,
    name: String,
}

impl ScratchDatabase {
    async fn create() -> (Self, String) {
        let base_url = postgres_base_url();
        let name = format!("orgs_test_{:016x}", rand::thread_rng().r#gen::<u64>());
        let mut connection = sqlx::PgConnection::connect(&base_url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL does not answer at {base_url} ({error}); start it or set DATABASE_URL"
            )
        });
        sqlx::query(&format!("create database {name}"))
            .execute(&mut connection)
            .await
            .expect("create the test database");
        let url = database_url(&base_url, &name);
        (Self { base_url, name }, url)
    }
}

/// The URL of database `name` on the server of `base`.
fn database_url(base: &str, name: &str) -> String {
    let (without_query, query) = base
        .split_once('?')
        .map_or((base, None), |(u, q)| (u, Some(q)));
    let server = without_query
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
        .map_or(without_query, |(server, _)| server);
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let base_url = self.base_url.clone();
        let name = self.name.clone();
        // Drop runs outside async code: use a thread with its own small runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut connection = sqlx::PgConnection::connect(&base_url).await.ok()?;
                sqlx::query(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut connection)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// A running service and a client for it.
pub struct TestApp {
    /// The service's address.
    pub address: SocketAddr,
    /// The API key of the first administrator (of organization 1).
    pub admin_key: String,
    /// The id of the first organization.
    pub root_id: i64,
    /// What the service sent.
    pub mailer: CapturingMailer,
    /// The backend it runs on.
    pub backend: Backend,
    /// The database it runs on (the server's own URL, also for `PgBouncer`: for checks
    /// that look behind the API).
    pub database_url: String,
    client: reqwest::Client,
    server: Option<RunningServer>,
    _database: Option<ScratchDatabase>,
    _directory: Option<tempfile::TempDir>,
}

/// Starts the service on `backend` with the default limits.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, AbuseLimits::default()).await
}

/// Starts the service on `backend` with the given abuse limits.
pub async fn spawn_app_with(backend: Backend, limits: AbuseLimits) -> TestApp {
    spawn_app_with_options(
        backend,
        SpawnOptions {
            limits,
            ..SpawnOptions::default()
        },
    )
    .await
}

/// How to start a test app.
pub struct SpawnOptions {
    /// The abuse limits.
    pub limits: AbuseLimits,
    /// Where e-mails go; a capturing mailer when `None`.
    pub mailer: Option<Arc<dyn Mailer>>,
    /// How the outbox worker retries.
    pub delivery: DeliveryPolicy,
    /// The HTTP connections' time limits.
    pub connections: ConnectionLimits,
    /// For `Postgres`: the server the service connects through (such as a proxy's
    /// `postgres://postgres@127.0.0.1:PORT`), instead of `DATABASE_URL`'s.
    pub postgres_server: Option<String>,
    /// Password-hashing slots and wait; by default a wait long enough that tests
    /// sharing a busy machine never see `503` unless they ask for it.
    pub hashing: HashingSettings,
    /// How long idempotency keys live (`ORGS_IDEMPOTENCY_TTL`).
    pub idempotency_ttl: domain::Duration,
    /// How often the uses of API keys are written: short, so that tests see them soon.
    pub key_use_flush: StdDuration,
    /// How long audit-log events are kept (pruned once at start, then every ten minutes).
    pub audit_retention: domain::Duration,
    /// Whether webhook endpoints may be on private addresses (`ORGS_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// How the webhook worker paces itself and retries: by default, one retry after 1 s.
    pub webhooks: WebhookPolicy,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        Self {
            limits: AbuseLimits::default(),
            mailer: None,
            postgres_server: None,
            hashing: HashingSettings {
                max_wait: StdDuration::from_secs(120),
                ..HashingSettings::default()
            },
            connections: ConnectionLimits::default(),
            idempotency_ttl: domain::Duration::hours(24),
            key_use_flush: StdDuration::from_millis(200),
            audit_retention: domain::Duration::days(365),
            webhook_allow_private: false,
            webhooks: WebhookPolicy {
                idle_poll: StdDuration::from_millis(20),
                schedule: domain::webhook::RetrySchedule::new(vec![domain::Duration::seconds(1)]),
                ..WebhookPolicy::default()
            },
            delivery: DeliveryPolicy {
                idle_poll: StdDuration::from_millis(20),
                ..DeliveryPolicy::default()
            },
        }
    }
}

/// Starts the service on `backend` with the given options.
///
/// # Panics
/// When the service cannot start: the test cannot go on.
pub async fn spawn_app_with_options(backend: Backend, options: SpawnOptions) -> TestApp {
    let (database, directory, url) = match backend {
        Backend::Sqlite => {
            let directory = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}", directory.path().join("orgs.db").display());
            (None, Some(directory), url)
        }
        Backend::Postgres | Backend::PgBouncer => {
            let (database, url) = ScratchDatabase::create().await;
            let url = match &options.postgres_server {
                Some(server) => database_url(&format!("{server}/postgres"), &database.name),
                None => url,
            };
            (Some(database), None, url)
        }
    };
    let database_url = url.clone();
    let (running, mailer) = start_server(backend, &url, options).await;
    let bootstrapped = running
        .bootstrapped
        .as_ref()
        .expect("a fresh database is bootstrapped");
    TestApp {
        address: running.address,
        admin_key: bootstrapped.api_key.expose().to_owned(),
        root_id: bootstrapped.organization.id.get(),
        mailer,
        backend,
        database_url,
        client: reqwest::Client::new(),
        server: Some(running),
        _database: database,
        _directory: directory,
    }
}

/// Starts the service on the database at `url`.
async fn start_server(
    backend: Backend,
    url: &str,
    options: SpawnOptions,
) -> (RunningServer, CapturingMailer) {
    let limits = options.limits;
    let mailer = CapturingMailer::default();
    let (served_url, pooler) = match backend {
        Backend::PgBouncer => (
            pgbouncer::PgBouncer::shared().route(url),
            DatabasePooler::Transaction,
        ),
        Backend::Sqlite | Backend::Postgres => (url.to_owned(), DatabasePooler::None),
    };
    let running = server::start(StartOptions {
        database_url: served_url.parse::<DatabaseUrl>().expect("database URL"),
        pooler,
        listen: "127.0.0.1:0".parse().expect("address"),
        settings: ServiceSettings {
            public_url: "http://orgs.test".to_owned(),
            invitation_ttl: domain::Duration::days(7),
            session_ttl: domain::Duration::hours(12),
            limits,
            hashing: options.hashing,
            idempotency_ttl: options.idempotency_ttl,
            key_use_flush: options.key_use_flush,
            webhook_allow_private: options.webhook_allow_private,
        },
        mailer: options
            .mailer
            .unwrap_or_else(|| Arc::new(mailer.clone()) as Arc<dyn Mailer>),
        delivery: options.delivery,
        connections: options.connections,
        statement_timeout: StdDuration::from_secs(10),
        audit_retention: options.audit_retention,
        webhooks: options.webhooks,
    })
    .await
    .expect("the service starts");
    (running, mailer)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl Reply {
    async fn read(response: Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// A header's value as text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl TestApp {
    /// Another service on this app's database, as a second `orgs serve` process behind a
    /// load balancer would be, with its own capturing mailer. Drop it before this app.
    ///
    /// # Panics
    /// When the service cannot start.
    pub async fn spawn_beside(&self, options: SpawnOptions) -> TestApp {
        let (running, mailer) = start_server(self.backend, &self.database_url, options).await;
        TestApp {
            address: running.address,
            admin_key: self.admin_key.clone(),
            root_id: self.root_id,
            mailer,
            backend: self.backend,
            database_url: self.database_url.clone(),
            client: reqwest::Client::new(),
            server: Some(running),
            _database: None,
            _directory: None,
        }
    }

    /// The absolute URL of a path.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A request builder, authenticated with `key` when given.
    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// Sends a request and reads the reply.
    ///
    /// # Panics
    /// When the service does not answer.
    pub async fn send(&self, builder: RequestBuilder) -> Reply {
        Reply::read(builder.send().await.expect("the service answers")).await
    }

    /// `GET` as `key`.
    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.send(self.request(Method::GET, path, Some(key))).await
    }

    /// `POST` a JSON body as `key` (or anonymously).
    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Reply {
        self.send(self.request(Method::POST, path, key).json(body))
            .await
    }

    /// `PUT` a JSON body as `key`.
    pub async fn put(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.send(self.request(Method::PUT, path, Some(key)).json(body))
            .await
    }

    /// `PATCH` a JSON body as `key`.
    pub async fn patch(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.send(self.request(Method::PATCH, path, Some(key)).json(body))
            .await
    }

    /// `DELETE` as `key`.
    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.send(self.request(Method::DELETE, path, Some(key)))
            .await
    }

    /// Creates a child of the root as the first administrator; returns its id.
    ///
    /// # Panics
    /// When the service refuses.
    pub async fn create_child(&self, name: &str) -> i64 {
        let reply = self
            .post(
                "/organizations/",
                Some(&self.admin_key),
                &serde_json::json!({
                    "name": name,
                    "contact_email": "child@example.com",
                    "parent": format!("/organizations/{}/", self.root_id),
                }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        id_of(&reply.body["url"])
    }

    /// Invites `identifier` into `organization` with `role` as the first administrator,
    /// accepts the invitation, and returns the new user's API key.
    ///
    /// # Panics
    /// When a step fails.
    pub async fn add_user(&self, organization: i64, identifier: &str, role: &str) -> String {
        let invited = self
            .post(
                &format!("/organizations/{organization}/invite_user/"),
                Some(&self.admin_key),
                &serde_json::json!({"identifier": identifier, "role": role}),
            )
            .await;
        assert_eq!(invited.status, 201, "{}", invited.text);
        let token = self.token_sent_to(identifier).await;
        let accepted = self
            .post(
                "/invitations/accept/",
                None,
                &serde_json::json!({
                    "token": token,
                    "password": "correct horse battery",
                    "first_name": "Test",
                    "last_name": "User",
                }),
            )
            .await;
        assert_eq!(accepted.status, 201, "{}", accepted.text);
        accepted.body["api_key"]
            .as_str()
            .expect("an API key")
            .to_owned()
    }

    /// Waits (up to 10 s) for an invitation e-mail to `to` and returns the latest
    /// token it carries.
    ///
    /// # Panics
    /// When none arrives.
    pub async fn token_sent_to(&self, to: &str) -> String {
        let to = to.to_lowercase();
        for _ in 0..500 {
            let token = self
                .mailer
                .sent()
                .iter()
                .rev()
                .find(|email| email.to.as_str().to_lowercase() == to)
                .and_then(|email| token_in(&email.text));
            if let Some(token) = token {
                return token;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        panic!("no invitation e-mail reached {to}");
    }

    /// How many e-mails reached `to` so far.
    #[must_use]
    pub fn emails_to(&self, to: &str) -> usize {
        self.mailer
            .sent()
            .iter()
            .filter(|email| email.to.as_str().eq_ignore_ascii_case(to))
            .count()
    }

    /// Restores an archived organization, as `orgs admin restore-organization` does.
    ///
    /// # Panics
    /// When the organization is not archived.
    pub async fn restore(&self, organization: i64) {
        self.operator()
            .restore_organization(domain::OrganizationId::new(organization))
            .await
            .expect("restored");
    }

    /// The operator commands (`orgs admin …`) over this app's database.
    ///
    /// # Panics
    /// When the server is stopped.
    #[must_use]
    pub fn operator(&self) -> Arc<app::usecases::OperatorService> {
        let server = self.server.as_ref().expect("the server runs");
        server::Services::new(
            &server.storage,
            &ServiceSettings {
                public_url: String::new(),
                invitation_ttl: domain::Duration::days(7),
                session_ttl: domain::Duration::hours(12),
                limits: AbuseLimits::default(),
                hashing: HashingSettings::default(),
                webhook_allow_private: false,
                idempotency_ttl: domain::Duration::hours(24),
                key_use_flush: server::DEFAULT_KEY_USE_FLUSH,
            },
        )
        .operator
    }

    /// Sets an organization's `can_external_optout`, as `orgs admin set-flags` does.
    ///
    /// # Panics
    /// When the organization does not exist.
    pub async fn set_can_external_optout(&self, organization: i64, value: bool) {
        self.operator()
            .set_flags(domain::OrganizationId::new(organization), None, Some(value))
            .await
            .expect("flags set");
    }

    /// How many e-mails wait in the outbox (neither delivered nor dead).
    ///
    /// # Panics
    /// When storage fails.
    pub async fn outbox_backlog(&self) -> u64 {
        let server = self.server.as_ref().expect("the server runs");
        server.storage.outbox.backlog().await.expect("backlog")
    }

    /// Runs one SQL statement on the service's database, behind the API (for states the
    /// API cannot make at once, such as a key past its expiry).
    ///
    /// # Panics
    /// When the statement fails.
    pub async fn execute_sql(&self, statement: &str) {
        match self.backend {
            Backend::Postgres | Backend::PgBouncer => {
                let mut connection = sqlx::PgConnection::connect(&self.database_url)
                    .await
                    .expect("connects");
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .expect("the statement runs");
            }
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .expect("opens");
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .expect("the statement runs");
            }
        }
    }

    /// A second process of the service on the same database, as behind a load balancer.
    ///
    /// # Panics
    /// When it cannot start.
    pub async fn another_instance(&self) -> TestApp {
        self.spawn_beside(SpawnOptions::default()).await
    }

    /// Stops this service and starts it again on the same database with `options`.
    ///
    /// # Panics
    /// When the service cannot stop or start.
    pub async fn restart(mut self, options: SpawnOptions) -> TestApp {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("the server stops cleanly");
        }
        let (running, _) = start_server(self.backend, &self.database_url, options).await;
        self.address = running.address;
        self.server = Some(running);
        self
    }

    /// How many webhook deliveries are pending.
    ///
    /// # Panics
    /// When storage fails.
    pub async fn webhook_backlog(&self) -> u64 {
        let server = self.server.as_ref().expect("the server runs");
        server.storage.deliveries.backlog().await.expect("backlog")
    }

    /// Stops the service gracefully.
    ///
    /// # Panics
    /// When serving failed.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("the server stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.request_stop();
        }
    }
}

/// A TCP proxy in front of PostgreSQL that a test can cut and restore, to see the
/// service through a database outage.
pub struct DatabaseProxy {
    /// The port it listens on.
    pub port: u16,
    up: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DatabaseProxy {
    /// Starts forwarding a free local port to the PostgreSQL of `DATABASE_URL`.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start() -> Self {
        let upstream = postgres_address();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a proxy port");
        let port = listener.local_addr().expect("address").port();
        let (up, watcher) = tokio::sync::watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !*watcher.borrow() {
                    // Down: refuse by closing at once.
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut watcher = watcher.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watcher.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { port, up, task }
    }

    /// The server URL for `SpawnOptions::postgres_server`.
    #[must_use]
    pub fn server_url(&self) -> String {
        let base = postgres_base_url();
        let user = base
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map_or("postgres", |(user, _)| user);
        format!("postgres://{user}@127.0.0.1:{}", self.port)
    }

    /// Cuts every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `host:port` of the PostgreSQL of `DATABASE_URL`.
fn postgres_address() -> String {
    let base = postgres_base_url();
    let after_scheme = base
        .split_once("://")
        .map_or(base.as_str(), |(_, rest)| rest);
    let host_port = after_scheme
        .rsplit_once('@')
        .map_or(after_scheme, |(_, host)| host)
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:5432");
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// An SMTP server process for delivery tests (`tests/smtp/server.py`, on aiosmtpd),
/// recording each message as a JSON line in a file.
pub struct SmtpServer {
    /// Its port.
    pub port: u16,
    output: std::path::PathBuf,
    child: Option<std::process::Child>,
    _directory: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts one on a free port.
    ///
    /// # Panics
    /// When Python or aiosmtpd is missing: install them (`pip install aiosmtpd`).
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let directory = tempfile::tempdir().expect("temporary directory");
        let mut server = Self {
            port,
            output: directory.path().join("received.jsonl"),
            child: None,
            _directory: directory,
        };
        server.resume().await;
        server
    }

    /// Starts the process again on the same port.
    ///
    /// # Panics
    /// When it does not come up within 10 s.
    pub async fn resume(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp/server.py");
        let python = smtp_python().unwrap_or_else(|reason| panic!("{reason}"));
        let child = std::process::Command::new(python)
            .arg(script)
            .arg(self.port.to_string())
            .arg(&self.output)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect(
                "python3 runs the SMTP test server (install python3 and `pip install aiosmtpd`)",
            );
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(std::process::Child::try_wait) {
                panic!(
                    "the SMTP test server exited ({status}); is aiosmtpd installed? `pip install aiosmtpd`"
                );
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        panic!("the SMTP test server did not start on port {}", self.port);
    }

    /// Stops the process: an outage.
    pub fn halt(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.kill());
            drop(child.wait());
        }
    }

    /// The URL the service sends to.
    #[must_use]
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, as `(recipients, raw message)`.
    #[must_use]
    pub fn received(&self) -> Vec<(Vec<String>, String)> {
        let Ok(text) = std::fs::read_to_string(&self.output) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .map(|message| {
                let to = message["to"]
                    .as_array()
                    .map(|to| {
                        to.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                (to, message["data"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }
}

/// A Python with aiosmtpd: the machine's `python3` when it has it, otherwise a virtual
/// environment made once in the temporary directory with aiosmtpd installed from PyPI.
fn smtp_python() -> Result<std::path::PathBuf, String> {
    static PYTHON: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| python_with("import aiosmtpd", true, "orgs-tests-smtp-venv", "aiosmtpd"))
        .clone()
}

/// A Python on which `check` (Python code) runs: the machine's `python3` when
/// `system_first` and it passes there, otherwise a virtual environment `venv` in the
/// temporary directory, made once, with `requirement` installed from PyPI.
///
/// # Errors
/// A line saying what to install, when no Python passes `check`.
pub fn python_with(
    check: &str,
    system_first: bool,
    venv: &str,
    requirement: &str,
) -> Result<std::path::PathBuf, String> {
    let passes = |python: &std::path::Path| {
        std::process::Command::new(python)
            .args(["-c", check])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    let system = std::path::PathBuf::from("python3");
    if system_first && passes(&system) {
        return Ok(system);
    }
    let venv = std::env::temp_dir().join(venv);
    let python = venv.join("bin").join("python3");
    if passes(&python) {
        return Ok(python);
    }
    let made = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|status| status.success());
    let installed = made
        && std::process::Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", requirement])
            .status()
            .is_ok_and(|status| status.success());
    if installed && passes(&python) {
        Ok(python)
    } else {
        Err(format!(
            "these tests need python3 with `{requirement}`: `pip install {requirement}`"
        ))
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The acceptance token in an invitation e-mail's text.
#[must_use]
pub fn token_in(text: &str) -> Option<String> {
    let start = text.find("token=")? + "token=".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// The id at the end of a link such as `"/organizations/2/"`.
///
/// # Panics
/// When the value is no such link.
#[must_use]
pub fn id_of(link: &Value) -> i64 {
    link.as_str()
        .and_then(|link| link.trim_end_matches('/').rsplit('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {link}"))
}

/// Runs one async test scenario on both backends, as tests named `sqlite`, `postgres`
/// and `pgbouncer` (PostgreSQL through a transaction-mode pooler) in a module named
/// after the scenario.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario($crate::spawn_app($crate::Backend::Sqlite).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario($crate::spawn_app($crate::Backend::Postgres).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn pgbouncer() {
                    super::$scenario($crate::spawn_app($crate::Backend::PgBouncer).await).await;
                }
            }
        )+
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_replaces_the_database_name() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            database_url("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }

    #[test]
    fn the_token_is_read_from_the_acceptance_link() {
        assert_eq!(
            token_in("open http://x/invitations/accept?token=abc-DEF_1\nthanks").as_deref(),
            Some("abc-DEF_1")
        );
        assert_eq!(token_in("no link"), None);
    }

    #[test]
    fn ids_are_read_from_links() {
        assert_eq!(id_of(&Value::from("/organizations/12/")), 12);
    }
}
