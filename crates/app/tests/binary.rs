//! Black-box tests of the `orgs` binary as a child process: first start and its key,
//! the operator commands, graceful shutdown, and bad configuration.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "../../../tests/src/pgbouncer.rs"]
mod pgbouncer;

const BINARY: &str = env!("CARGO_BIN_EXE_orgs");

/// A free local port (closed again, for the child to bind).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn sqlite_url(directory: &Path) -> String {
    format!(
        "sqlite://{}",
        directory.join("data").join("orgs.db").display()
    )
}

/// A running `orgs serve` and the lines it wrote to standard error.
struct Served {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    fn start_with(database_url: &str, environment: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut child = Command::new(BINARY)
            .env_remove("ORGS_SMTP_URL")
            .envs(environment.iter().copied())
            .env("ORGS_DATABASE_URL", database_url)
            .env("ORGS_LISTEN", format!("127.0.0.1:{port}"))
            .env("ORGS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("orgs starts");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Self {
            child,
            port,
            stderr: receiver,
            seen: Vec::new(),
        };
        served.wait_for_line("listening");
        served
    }

    /// Waits up to 30 s for a standard-error line containing `needle`.
    fn wait_for_line(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no line with {needle:?}; saw:\n{}", self.seen.join("\n"));
    }

    /// The API key printed on first start.
    fn bootstrap_key(&mut self) -> String {
        self.wait_for_line("Authorization: Bearer");
        self.seen
            .iter()
            .find_map(|line| {
                let start = line.find("Bearer ")? + "Bearer ".len();
                let key: String = line[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                (!key.is_empty()).then_some(key)
            })
            .expect("a key in the curl line")
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// How long the process took to exit after `since`, and whether it exited with 0;
    /// `None` when it is still running `limit` after `since`.
    fn exit_within(&mut self, since: Instant, limit: Duration) -> Option<(Duration, bool)> {
        while since.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some((since.elapsed(), status.success()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Waits up to 30 s for the process to exit; returns whether it exited with 0.
    fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("orgs did not exit after SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            drop(self.child.kill());
            drop(self.child.wait());
        }
    }
}

/// A plain HTTP/1.1 exchange over a socket; returns the status code and the body.
fn http(port: u16, method: &str, path: &str, key: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("writes");
    read_response(stream)
}

fn read_response(mut stream: TcpStream) -> (u16, String) {
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn admin(database_url: &str, args: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("admin")
        .args(args)
        .env("ORGS_DATABASE_URL", database_url)
        .output()
        .expect("orgs admin runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn the_first_start_creates_the_database_and_prints_a_working_key_once() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let url = sqlite_url(directory.path());
    let mut served = Served::start(&url);

    let key = served.bootstrap_key();
    let (status, body) = http(served.port, "GET", "/organizations/", &key, None);
    served.terminate();

    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"count\":1"), "{body}");
    assert!(served.wait_exit());
    assert!(directory.path().join("data").join("orgs.db").exists());
    let mut again = Served::start(&url);
    again.terminate();
    assert!(again.wait_exit());
    assert!(
        !again.seen.iter().any(|line| line.contains("Bearer")),
        "the key is printed only once"
    );
}

#[test]
fn a_request_in_flight_during_sigterm_completes_and_the_exit_is_clean() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut served = Served::start(&sqlite_url(directory.path()));
    let key = served.bootstrap_key();
    let body = r#"{"settings": {"nickname": "graceful"}}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", served.port)).expect("connects");
    let head = format!(
        "PATCH /organizations/1/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("writes the head");
    std::thread::sleep(Duration::from_millis(300));

    served.terminate();
    served.wait_for_line("stopping");
    stream.write_all(body.as_bytes()).expect("writes the body");
    let (status, answer) = read_response(stream);

    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("graceful"));
    assert!(served.wait_exit());
}

#[test]
fn the_operator_commands_print_only_the_asked_value() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let url = sqlite_url(directory.path());
    assert!(
        Command::new(BINARY)
            .arg("migrate")
            .env("ORGS_DATABASE_URL", &url)
            .status()
            .expect("migrate runs")
            .success()
    );

    let root = admin(
        &url,
        &[
            "create-organization",
            "--name",
            "Acme",
            "--contact-email",
            "ops@acme.example",
        ],
    );
    let root_id = stdout(&root);
    let child = admin(
        &url,
        &[
            "create-organization",
            "--name",
            "Acme Child",
            "--contact-email",
            "child@acme.example",
            "--parent",
            &root_id,
            "--can-attach-files",
        ],
    );
    let child_id = stdout(&child);
    let user = admin(
        &url,
        &[
            "create-user",
            "--organization",
            &root_id,
            "--identifier",
            "ops@acme.example",
            "--role",
            "administrators",
        ],
    );
    let flags = admin(
        &url,
        &[
            "set-flags",
            "--organization",
            &child_id,
            "--can-external-optout",
            "true",
        ],
    );
    let purged = admin(
        &url,
        &["purge-organizations", "--archived-before", "2000-01-01"],
    );

    assert!(root.status.success(), "{root:?}");
    assert!(root_id.parse::<i64>().is_ok(), "{root_id}");
    assert!(child.status.success() && child_id.parse::<i64>().is_ok());
    assert!(user.status.success(), "{user:?}");
    assert_eq!(stdout(&user).lines().count(), 1);
    assert!(stdout(&user).len() >= 22, "an API key of at least 128 bits");
    assert!(flags.status.success(), "{flags:?}");
    assert_eq!(stdout(&flags), "");
    assert!(purged.status.success());
    assert_eq!(stdout(&purged), "0");
}

#[test]
fn restoring_an_organization_that_is_not_archived_fails_with_one_line() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let url = sqlite_url(directory.path());

    let output = admin(&url, &["restore-organization", "--organization", "42"]);

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn bad_configuration_fails_with_one_line_and_no_panic() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let url = sqlite_url(directory.path());
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port");
    let taken_port = taken.local_addr().expect("address").port();

    type Environment<'a> = Vec<(&'a str, String)>;
    let cases: Vec<(Environment, Vec<&str>)> = vec![
        (
            vec![("ORGS_DATABASE_URL", "mysql://nowhere/db".to_owned())],
            vec![],
        ),
        (
            vec![(
                "ORGS_DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/none".to_owned(),
            )],
            vec![],
        ),
        (
            vec![
                ("ORGS_DATABASE_URL", url.clone()),
                ("ORGS_LISTEN", format!("127.0.0.1:{taken_port}")),
            ],
            vec![],
        ),
        (
            vec![("ORGS_DATABASE_URL", url.clone())],
            vec![
                "admin",
                "create-user",
                "--organization",
                "1",
                "--identifier",
                "a@example.com",
                "--role",
                "owners",
            ],
        ),
    ];

    for (environment, args) in cases {
        let output = Command::new(BINARY)
            .args(&args)
            .envs(environment.clone())
            .env("ORGS_LOG", "off")
            .output()
            .expect("orgs runs");

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{environment:?} {args:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
        assert!(
            stderr.trim().lines().count() <= 3,
            "a short reason, not a dump: {stderr}"
        );
    }
    drop(taken);
}

/// A fresh PostgreSQL database for one test, dropped at the end.
struct ScratchPostgres {
    base: String,
    name: String,
}

impl ScratchPostgres {
    fn create() -> Self {
        let base = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("orgs_bin_{}_{}", std::process::id(), free_port());
        Self::run(&base, &format!("create database {name}"));
        Self { base, name }
    }

    fn url(&self) -> String {
        let server = self
            .base
            .rsplit_once('/')
            .map_or(self.base.as_str(), |(server, _)| server);
        format!("{server}/{}", self.name)
    }

    fn run(base: &str, statement: &str) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            use sqlx::Connection as _;
            let mut connection = sqlx::PgConnection::connect(base).await.unwrap_or_else(|error| {
                panic!("PostgreSQL does not answer at {base} ({error}); start it or set DATABASE_URL")
            });
            sqlx::query(statement)
                .execute(&mut connection)
                .await
                .expect("statement runs");
        });
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        Self::run(
            &self.base,
            &format!("drop database if exists {} with (force)", self.name),
        );
    }
}

#[test]
fn two_processes_on_one_postgres_behave_as_one_service() {
    let database = ScratchPostgres::create();
    let url = database.url();
    let limits = [("ORGS_LOGIN_FAILURES", "3/15m")];
    let mut first = Served::start_with(&url, &limits);
    let key = first.bootstrap_key();
    let mut second = Served::start_with(&url, &limits);
    let ports = [first.port, second.port];

    let (created, child) = http(
        ports[0],
        "POST",
        "/organizations/",
        &key,
        Some(
            r#"{"name": "Child", "contact_email": "c@example.com", "parent": "/organizations/1/"}"#,
        ),
    );
    let (seen, _) = http(ports[1], "GET", "/organizations/2/", &key, None);
    let invite = r#"{"identifier": "both@example.com"}"#;
    let (invited, _) = http(
        ports[1],
        "POST",
        "/organizations/2/invite_user/",
        &key,
        Some(invite),
    );
    let (again, again_body) = http(
        ports[0],
        "POST",
        "/organizations/2/invite_user/",
        &key,
        Some(invite),
    );
    let wrong = r#"{"identifier": "admin@localhost", "password": "wrong password"}"#;
    let failures: Vec<u16> = (0..4)
        .map(|attempt| http(ports[attempt % 2], "POST", "/auth/token/", "", Some(wrong)).0)
        .collect();
    first.terminate();
    second.terminate();

    assert_eq!(created, 201, "{child}");
    assert_eq!(seen, 200);
    assert_eq!(invited, 201);
    assert_eq!(again, 400, "{again_body}");
    assert!(again_body.contains("already been invited"), "{again_body}");
    // One limit across both processes: the fourth failure, on either, is throttled.
    assert_eq!(failures, [400, 400, 400, 429]);
    assert!(first.wait_exit());
    assert!(second.wait_exit());
    assert!(
        !second.seen.iter().any(|line| line.contains("Bearer")),
        "only the first process bootstraps"
    );
}

/// The operator commands through PgBouncer in transaction mode: refused at connection
/// without the pooler setting (the statement timeout's startup option is no parameter a
/// pooler passes on), working with it.
#[test]
fn operator_commands_work_through_a_transaction_mode_pooler_with_the_pooler_setting() {
    let bouncer = pgbouncer::PgBouncer::start(2);
    let database = ScratchPostgres::create();
    let pooled = bouncer.route(&database.url());
    let migrate = |pooler: &str| {
        Command::new(BINARY)
            .arg("migrate")
            .env("ORGS_DATABASE_URL", &pooled)
            .env("ORGS_DATABASE_POOLER", pooler)
            .output()
            .expect("migrate runs")
    };

    let without = migrate("none");
    let with = migrate("transaction");
    let again = migrate("transaction");
    let created = Command::new(BINARY)
        .args([
            "admin",
            "create-organization",
            "--name",
            "Acme",
            "--contact-email",
            "ops@acme.example",
            "--database-pooler",
            "transaction",
        ])
        .env("ORGS_DATABASE_URL", &pooled)
        .output()
        .expect("admin runs");

    let refused = String::from_utf8_lossy(&without.stderr);
    assert!(!without.status.success());
    assert_eq!(refused.trim().lines().count(), 1, "{refused}");
    assert!(
        refused.contains("unsupported startup parameter"),
        "{refused}"
    );
    assert!(
        with.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&with.stderr),
        bouncer.log()
    );
    assert!(again.status.success());
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(
        stdout(&created).parse::<i64>().is_ok(),
        "{}",
        stdout(&created)
    );
}

/// Four `orgs serve` processes behind one pooler of five server connections behave as
/// one service: one open invitation per address, one login limit.
#[test]
fn four_processes_through_one_transaction_mode_pooler_behave_as_one_service() {
    let bouncer = pgbouncer::PgBouncer::start(5);
    let database = ScratchPostgres::create();
    let pooled = bouncer.route(&database.url());
    let environment = [
        ("ORGS_DATABASE_POOLER", "transaction"),
        ("ORGS_LOGIN_FAILURES", "3/15m"),
    ];
    let mut first = Served::start_with(&pooled, &environment);
    let key = first.bootstrap_key();
    let others: Vec<Served> = (0..3)
        .map(|_| Served::start_with(&pooled, &environment))
        .collect();
    let ports: Vec<u16> = std::iter::once(first.port)
        .chain(others.iter().map(|served| served.port))
        .collect();

    let invitations: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|n| {
                let port = ports[n % ports.len()];
                let key = key.as_str();
                scope.spawn(move || {
                    http(
                        port,
                        "POST",
                        "/organizations/1/invite_user/",
                        key,
                        Some(r#"{"identifier": "all@example.com"}"#),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a request"))
            .collect()
    });
    let wrong = r#"{"identifier": "admin@localhost", "password": "wrong password"}"#;
    let failures: Vec<u16> = (0..5)
        .map(|attempt| {
            http(
                ports[attempt % ports.len()],
                "POST",
                "/auth/token/",
                "",
                Some(wrong),
            )
            .0
        })
        .collect();
    let listed: Vec<u16> = ports
        .iter()
        .map(|port| http(*port, "GET", "/organizations/", &key, None).0)
        .collect();
    first.terminate();
    for served in &others {
        served.terminate();
    }

    let created = invitations
        .iter()
        .filter(|(status, _)| *status == 201)
        .count();
    let refused = invitations
        .iter()
        .filter(|(status, body)| *status == 400 && body.contains("already been invited"))
        .count();
    assert_eq!((created, refused), (1, 11), "{invitations:?}");
    assert_eq!(failures, [400, 400, 400, 429, 429]);
    assert_eq!(listed, [200, 200, 200, 200]);
    assert!(first.wait_exit());
    for mut served in others {
        assert!(served.wait_exit());
    }
}

/// The lines of `served` written so far, after waiting for one containing `needle`.
fn lines_after(served: &mut Served, needle: &str) -> Vec<String> {
    served.wait_for_line(needle);
    served.seen.clone()
}

#[test]
fn a_line_break_in_an_organization_name_cannot_forge_a_log_line() {
    for format in ["pretty", "json"] {
        let directory = tempfile::tempdir().expect("temporary directory");
        let mut served = Served::start_with(
            &sqlite_url(directory.path()),
            &[("ORGS_LOG_FORMAT", format)],
        );
        let key = served.bootstrap_key();
        let name = r#"x\nINFO to=victim@example.com token=FORGED\r\nINFO to=victim@example.com"#;

        let (created, child) = http(
            served.port,
            "POST",
            "/organizations/",
            &key,
            Some(&format!(
                r#"{{"name": "{name}", "contact_email": "c@example.com", "parent": "/organizations/1/"}}"#
            )),
        );
        let (invited, invitation) = http(
            served.port,
            "POST",
            "/organizations/2/invite_user/",
            &key,
            Some(r#"{"identifier": "new@example.com"}"#),
        );
        let lines = lines_after(&mut served, "e-mail delivered");
        served.terminate();

        assert_eq!(created, 201, "{child}");
        assert_eq!(invited, 201, "{invitation}");
        let forged: Vec<&String> = lines.iter().filter(|l| l.contains("FORGED")).collect();
        let naming: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("new@example.com"))
            .collect();
        assert_eq!(
            naming.len(),
            1,
            "{format}: one line per e-mail: {naming:#?}"
        );
        assert_eq!(
            forged, naming,
            "{format}: the name stays inside the e-mail's line"
        );
        let line = naming[0];
        assert!(
            line.contains("/invitations/accept?token="),
            "{format}: {line}"
        );
        if format == "pretty" {
            assert_eq!(line.matches(" to=new@example.com").count(), 1, "{line}");
        } else {
            let parsed: serde_json::Value = serde_json::from_str(line).expect("one JSON object");
            assert_eq!(parsed["to"], "new@example.com", "{line}");
            assert!(
                parsed["subject"]
                    .as_str()
                    .is_some_and(|subject| subject.contains("FORGED")),
                "{line}"
            );
        }
        for line in &lines {
            assert!(
                !line.trim_start().starts_with("INFO to="),
                "{format}: {line}"
            );
        }
        assert!(served.wait_exit());
    }
}

#[test]
fn help_never_shows_a_secret_set_in_the_environment() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["admin", "create-user", "--help"],
    ] {
        let output = Command::new(BINARY)
            .args(&args)
            .env("ORGS_DATABASE_URL", "postgres://u:hunter2@h/db")
            .env("ORGS_SMTP_URL", "smtp://u:hunter2@h:25")
            .output()
            .expect("orgs runs");

        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{args:?}: {printed}");
        assert!(printed.contains("ORGS_DATABASE_URL"), "{args:?}: {printed}");
        assert!(!printed.contains("hunter2"), "{args:?}: {printed}");
    }
}

#[test]
fn a_refused_database_url_is_reported_without_its_password() {
    let output = Command::new(BINARY)
        .env("ORGS_DATABASE_URL", "mysql://u:hunter2@h/db")
        .env("ORGS_LOG", "off")
        .output()
        .expect("orgs runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("mysql://u:***@h/db"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn the_start_up_lines_show_urls_with_the_password_replaced() {
    let database = ScratchPostgres::create();
    // The test server trusts local connections: the password is only there to be hidden.
    let url = database
        .url()
        .replacen("://postgres@", "://postgres:hunter2@", 1);
    assert!(url.contains("hunter2"), "{url}");

    let mut served = Served::start_with(&url, &[("ORGS_SMTP_URL", "smtp://u:hunter2@127.0.0.1:9")]);
    let database_line = served.wait_for_line("database ready");
    let smtp_line = served.wait_for_line("e-mail through SMTP");
    served.terminate();

    assert!(database_line.contains("postgres:***@"), "{database_line}");
    assert!(
        smtp_line.contains("smtp://u:***@127.0.0.1:9"),
        "{smtp_line}"
    );
    assert!(served.wait_exit());
    assert!(
        !served.seen.iter().any(|line| line.contains("hunter2")),
        "{:#?}",
        served.seen
    );
}

#[test]
fn a_duration_beyond_a_year_is_refused_at_start_without_a_panic() {
    let directory = tempfile::tempdir().expect("temporary directory");
    for (variable, value) in [
        ("ORGS_SESSION_TTL", "1000000000d"),
        ("ORGS_SESSION_TTL", "366d"),
        ("ORGS_INVITATION_TTL", "99999999999h"),
        ("ORGS_LOGIN_FAILURES", "10/1000000000d"),
        ("ORGS_INVITES_PER_RECIPIENT", "5/400d"),
    ] {
        let output = Command::new(BINARY)
            .env("ORGS_DATABASE_URL", sqlite_url(directory.path()))
            .env("ORGS_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("ORGS_LOG", "off")
            .env(variable, value)
            .output()
            .expect("orgs runs");

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{variable}={value}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains("at most 365d"), "{stderr}");
        assert!(
            stderr.trim().lines().count() <= 3,
            "a short reason, not a dump: {stderr}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_new_sqlite_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut served = Served::start(&sqlite_url(directory.path()));
    served.bootstrap_key();

    let mode = |name: &str| {
        std::fs::metadata(directory.path().join("data").join(name))
            .expect("the file exists")
            .permissions()
            .mode()
            & 0o777
    };
    let modes = [mode("orgs.db"), mode("orgs.db-wal"), mode("orgs.db-shm")];
    served.terminate();

    assert_eq!(modes, [0o600; 3]);
    assert!(served.wait_exit());
}

/// Adds `count` opt-outs to organization 1 of the SQLite database at `url`.
fn seed_opt_outs(url: &str, count: i64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        use sqlx::Connection as _;
        let mut connection = sqlx::SqliteConnection::connect(url)
            .await
            .expect("connected");
        sqlx::query(
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < $1) \
             insert into opt_outs (organization_id, address, origin, creation_date) \
             select 1, 'bulk' || i || '@example.com', 'web', 1700000000000000 - i from n",
        )
        .bind(count)
        .execute(&mut connection)
        .await
        .expect("seeded");
    });
}

#[test]
fn sigterm_exits_zero_within_15_s_while_a_client_is_stalled_mid_headers() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut served = Served::start(&sqlite_url(directory.path()));
    let mut stalled = TcpStream::connect(("127.0.0.1", served.port)).expect("connects");
    stalled
        .write_all(b"GET /me/ HTTP/1.1\r\nHost: localhost\r\nAuthor")
        .expect("half the headers");
    std::thread::sleep(Duration::from_millis(300));

    let signalled = Instant::now();
    served.terminate();
    let exit = served.exit_within(signalled, Duration::from_secs(15));

    assert!(
        matches!(exit, Some((_, true))),
        "exit after SIGTERM: {exit:?}"
    );
    drop(stalled);
}

#[test]
fn sigterm_exits_zero_within_15_s_while_a_csv_reader_is_stalled() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let url = sqlite_url(directory.path());
    let mut served = Served::start(&url);
    let key = served.bootstrap_key();
    seed_opt_outs(&url, 100_000);
    let mut stalled = TcpStream::connect(("127.0.0.1", served.port)).expect("connects");
    let request = format!(
        "GET /organizations/1/opt_outs/?format=csv HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {key}\r\n\r\n"
    );
    stalled.write_all(request.as_bytes()).expect("writes");
    let mut head = [0_u8; 12];
    stalled.read_exact(&mut head).expect("the answer starts");
    assert_eq!(&head, b"HTTP/1.1 200");
    // The export fills the socket buffers and waits for a reader that never comes.
    std::thread::sleep(Duration::from_secs(2));

    let signalled = Instant::now();
    served.terminate();
    let exit = served.exit_within(signalled, Duration::from_secs(15));

    assert!(
        matches!(exit, Some((_, true))),
        "exit after SIGTERM: {exit:?}"
    );
    drop(stalled);
}
