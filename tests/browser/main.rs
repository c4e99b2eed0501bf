//! The invitation page in a real browser (CONTRACT §10): headless Chromium, driven over
//! WebDriver (`chromedriver`), opens the link of the invitation e-mail, fills the form,
//! reads the API key and uses it. Debian's `chromium` and `chromium-driver` must be
//! installed (`.ci/run` installs them); without them these tests fail, they never skip.
//!
//! Screenshots of the pages at phone and desktop widths are saved in
//! `target/screenshots/` for a person to look at.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use app::config::LogFormat;
use app::server;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use orgs_tests::{Backend, SmtpServer, SpawnOptions, TestApp, spawn_app, spawn_app_with_options};
use serde_json::json;

/// The widths screenshots are taken at, a phone's and a desktop's (the phone's window is
/// tall enough to show the whole form).
const WIDTHS: [(&str, u32, u32); 2] = [("phone", 390, 1300), ("desktop", 1280, 900)];

/// A `chromedriver` on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
    profiles: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver must be installed for the browser tests \
                 (apt-get install -y chromium chromium-driver)",
            );
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    child,
                    port,
                    profiles: tempfile::tempdir().expect("a profile directory"),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromedriver did not listen on port {port} within 10 s");
    }

    /// A headless Chromium session asking for pages in `language`.
    async fn browser(&self, language: &str) -> Client {
        let profile = self.profiles.path().join(language);
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            format!("--lang={language}"),
            format!("--accept-lang={language}"),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium(),
                "args": args,
                "prefs": {"intl.accept_languages": language},
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("chromium starts under chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's Chromium.
fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .expect("chromium must be installed for the browser tests (apt-get install -y chromium)")
        .to_owned()
}

fn screenshots() -> PathBuf {
    let directory = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("screenshots");
    std::fs::create_dir_all(&directory).expect("the screenshot directory");
    directory
}

/// Saves the current page at each width when `shots` (one run per language takes them:
/// the others show the same pages).
async fn shoot(browser: &Client, shots: bool, language: &str, page: &str) {
    if !shots {
        return;
    }
    for (name, width, height) in WIDTHS {
        browser
            .set_window_size(width, height)
            .await
            .expect("window resized");
        let png = browser.screenshot().await.expect("a screenshot");
        let path = screenshots().join(format!("{language}-{page}-{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is saved");
    }
}

/// The link of the last invitation e-mail to `to`, from its HTML part, on the test
/// service's address (the e-mail names the configured public URL).
async fn link_in_email(app: &TestApp, to: &str) -> String {
    app.token_sent_to(to).await;
    let email = app
        .mailer
        .sent()
        .into_iter()
        .rev()
        .find(|email| email.to.as_str() == to)
        .expect("an invitation e-mail");
    let link = first_link(&email.html);
    assert!(
        email.text.contains(&link),
        "the text part has the same link"
    );
    app.url(&acceptance_path(&link))
}

/// The first `href` of an HTML part, unescaped.
fn first_link(html: &str) -> String {
    let start = html.find("href=\"").expect("a link in the HTML part") + "href=\"".len();
    let link = &html[start..];
    link[..link.find('"').expect("the link ends")].replace("&amp;", "&")
}

/// The path of an acceptance link on the test service's public URL.
fn acceptance_path(link: &str) -> String {
    let path = link
        .strip_prefix("http://orgs.test")
        .expect("the link is on the public URL");
    assert!(path.starts_with("/invitations/accept?token="), "{path}");
    path.to_owned()
}

async fn text_of(browser: &Client, id: &str) -> String {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|error| panic!("#{id} is on the page: {error}"))
        .text()
        .await
        .expect("its text")
}

async fn fill(browser: &Client, fields: &[(&str, &str)]) {
    for (id, value) in fields {
        let input = browser
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|error| panic!("#{id} is on the page: {error}"));
        input.clear().await.expect("cleared");
        input.send_keys(value).await.expect("typed");
    }
    let submit = browser
        .find(Locator::Id("submit"))
        .await
        .expect("the submit button");
    submit.clone().click().await.expect("submitted");
    // The answer is a new page: wait until the old one is gone.
    for _ in 0..200 {
        if submit.is_displayed().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the form's answer did not load within 10 s");
}

/// What one language's run expects to read.
struct Texts {
    language: &'static str,
    title: &'static str,
    short_password: &'static str,
    mismatch: &'static str,
    welcome: &'static str,
    invalid: &'static str,
}

const ENGLISH: Texts = Texts {
    language: "en",
    title: "Join Acme Mail",
    short_password: "Ensure this field has at least 8 characters.",
    mismatch: "The two passwords do not match.",
    welcome: "Welcome to Acme Mail",
    invalid: "Invalid or expired invitation.",
};

const FRENCH: Texts = Texts {
    language: "fr",
    title: "Rejoindre Acme Mail",
    short_password: "Assurez-vous que ce champ comporte au moins 8 caractères.",
    mismatch: "Les deux mots de passe ne correspondent pas.",
    welcome: "Bienvenue dans Acme Mail",
    invalid: "Invitation invalide ou expirée.",
};

/// Invites `guest@example.com` into a new child organization, `Acme Mail`, as `managers`.
async fn invite_guest(app: &TestApp) {
    invite(app, GUEST).await;
}

/// Invites `identifier` into a new child organization, `Acme Mail`, as `managers`.
async fn invite(app: &TestApp, identifier: &str) {
    let child = app.create_child("Acme Mail").await;
    let invited = app
        .post(
            &format!("/organizations/{child}/invite_user/"),
            Some(&app.admin_key),
            &json!({"identifier": identifier, "role": "managers"}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.text);
}

/// A person follows the e-mail's link, makes mistakes, joins, and uses the API key.
async fn a_person_joins_through_the_page(app: TestApp, texts: Texts) {
    invite_guest(&app).await;
    let link = link_in_email(&app, GUEST).await;
    joins_through(&app, &link, GUEST, &texts, app.backend == Backend::Sqlite).await;
}

/// The same with the link of an e-mail delivered by real SMTP, read from its HTML part.
async fn a_person_joins_from_an_smtp_message(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let mailer = server::mailer(Some(&smtp.url()), "orgs <noreply@orgs.test>").expect("mailer");
    let app = spawn_app_with_options(
        backend,
        SpawnOptions {
            mailer: Some(mailer),
            ..SpawnOptions::default()
        },
    )
    .await;
    invite_guest(&app).await;
    let mut received = Vec::new();
    for _ in 0..400 {
        received = smtp.received();
        if !received.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (to, raw) = received
        .pop()
        .expect("an e-mail arrives by SMTP within 20 s");
    assert_eq!(to, ["guest@example.com"]);
    assert!(raw.contains("multipart/alternative"), "{raw}");
    // Quoted-printable soft line breaks and `=3D` would split the link.
    let message = raw.replace("=\r\n", "").replace("=3D", "=");
    let html = &message[message.find("text/html").expect("an HTML part")..];
    let path = acceptance_path(&first_link(html));

    joins_through(&app, &app.url(&path), GUEST, &ENGLISH, false).await;
}

/// Who the page tests invite.
const GUEST: &str = "guest@example.com";

/// Everything this test binary logs, through the service's own log format: the log
/// mailer's lines are read from here as an operator reads them on standard error.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        app::telemetry::init_with_writer("info", LogFormat::Pretty, move || {
            LogSink(Arc::clone(&sink))
        })
        .expect("the log format installs");
        buffer
    })
}

/// Appends what the subscriber writes to the shared log.
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
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

/// `line` without terminal colour sequences (`ESC [ … m`).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The acceptance link of the log mailer's line for `to`, on the test service's address.
async fn link_in_log_line(app: &TestApp, to: &str) -> String {
    let needle = format!(" to={to} ");
    for _ in 0..400 {
        let text = String::from_utf8_lossy(&log().lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned();
        let lines: Vec<String> = text
            .lines()
            .map(without_colours)
            .filter(|line| line.contains(&needle))
            .collect();
        if let Some(line) = lines.first() {
            assert_eq!(lines.len(), 1, "one line per e-mail: {lines:#?}");
            let start = line
                .find("http://orgs.test/invitations/accept?token=")
                .expect("the line holds the acceptance link")
                + "http://orgs.test".len();
            let path = &line[start..];
            let end = path
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/?=_-".contains(c)))
                .unwrap_or(path.len());
            return app.url(&path[..end]);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no log mailer line names {to} within 20 s");
}

/// The same with the link read from the log mailer's line (no SMTP server configured).
async fn a_person_joins_from_the_log_mailers_line(backend: Backend) {
    log();
    let app = spawn_app_with_options(
        backend,
        SpawnOptions {
            mailer: Some(server::mailer(None, "orgs <noreply@orgs.test>").expect("mailer")),
            ..SpawnOptions::default()
        },
    )
    .await;
    let reader = format!("reader-{}@example.com", backend_name(backend));
    invite(&app, &reader).await;
    let link = link_in_log_line(&app, &reader).await;

    joins_through(&app, &link, &reader, &ENGLISH, false).await;
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::PgBouncer => "pgbouncer",
    }
}

/// Opens `link`, makes mistakes, joins, uses the API key, and opens `link` again.
async fn joins_through(app: &TestApp, link: &str, identifier: &str, texts: &Texts, shots: bool) {
    let driver = Driver::start().await;
    let browser = driver.browser(texts.language).await;

    browser.goto(link).await.expect("the link opens");
    assert_eq!(text_of(&browser, "title").await, texts.title);
    assert_eq!(text_of(&browser, "organization").await, "Acme Mail");
    shoot(&browser, shots, texts.language, "invitation").await;

    fill(
        &browser,
        &[
            ("first_name", "Ada"),
            ("last_name", "Lovelace"),
            ("password", "short"),
            ("password_confirmation", "short"),
        ],
    )
    .await;
    assert_eq!(
        text_of(&browser, "password-error").await,
        texts.short_password
    );
    let first_name = browser
        .find(Locator::Id("first_name"))
        .await
        .expect("the first name field")
        .prop("value")
        .await
        .expect("its value");
    assert_eq!(first_name.as_deref(), Some("Ada"));
    shoot(&browser, shots, texts.language, "errors").await;

    fill(
        &browser,
        &[
            ("password", "long enough"),
            ("password_confirmation", "long enuogh"),
        ],
    )
    .await;
    assert_eq!(
        text_of(&browser, "password_confirmation-error").await,
        texts.mismatch
    );

    fill(
        &browser,
        &[
            ("password", "long enough"),
            ("password_confirmation", "long enough"),
        ],
    )
    .await;
    assert_eq!(text_of(&browser, "title").await, texts.welcome);
    let key = text_of(&browser, "api-key").await;
    shoot(&browser, shots, texts.language, "welcome").await;
    let me = app.get("/me/", &key).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["identifier"], identifier);
    assert_eq!(me.body["first_name"], "Ada");

    browser.goto(link).await.expect("the link opens again");
    assert_eq!(text_of(&browser, "title").await, texts.invalid);
    shoot(&browser, shots, texts.language, "invalid").await;

    browser.close().await.expect("the browser closes");
}

macro_rules! in_each_language_on_both_backends {
    ($($name:ident: $backend:ident, $texts:ident;)+) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            a_person_joins_through_the_page(spawn_app(Backend::$backend).await, $texts).await;
        }
    )+};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_log_mailers_line_on_sqlite() {
    a_person_joins_from_the_log_mailers_line(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_log_mailers_line_on_postgres() {
    a_person_joins_from_the_log_mailers_line(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_smtp_message_on_sqlite() {
    a_person_joins_from_an_smtp_message(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_smtp_message_on_postgres() {
    a_person_joins_from_an_smtp_message(Backend::Postgres).await;
}

in_each_language_on_both_backends! {
    english_on_sqlite: Sqlite, ENGLISH;
    english_on_postgres: Postgres, ENGLISH;
    french_on_sqlite: Sqlite, FRENCH;
    french_on_postgres: Postgres, FRENCH;
}
