//! Slow or stalled clients cannot starve others, and CSV cells cannot be read as
//! formulas (CONTRACT §9).

use std::time::{Duration, Instant};

use app::connections::ConnectionLimits;
use app::usecases::EXPORT_PAGE_ROWS;
use orgs_tests::{Backend, SpawnOptions, TestApp, on_both_backends, spawn_app_with_options};
use serde_json::json;
use sqlx::Connection as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

on_both_backends!(csv_cells_that_start_like_a_formula_come_out_with_a_quote_mark);

/// Enough opt-outs that their CSV (about 55 bytes a row) is far larger than what the
/// socket buffers of a client that reads nothing can hold.
const MANY: i64 = 100_000;

/// Adds `count` opt-outs to `organization` straight into the database, newest first
/// one second apart.
async fn seed_opt_outs(app: &TestApp, organization: i64, count: i64) {
    match app.backend {
        Backend::Postgres | Backend::PgBouncer => {
            let mut connection = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connected");
            sqlx::query(
                "insert into opt_outs (organization_id, address, origin, creation_date) \
                 select $1, 'bulk' || n || '@example.com', 'web', \
                 now() - n * interval '1 second' from generate_series(1, $2) n",
            )
            .bind(organization)
            .bind(count)
            .execute(&mut connection)
            .await
            .expect("seeded");
        }
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("connected");
            let now = chrono_micros();
            sqlx::query(
                "with recursive n(i) as (select 1 union all select i + 1 from n where i < $2) \
                 insert into opt_outs (organization_id, address, origin, creation_date) \
                 select $1, 'bulk' || i || '@example.com', 'web', $3 - i * 1000000 from n",
            )
            .bind(organization)
            .bind(count)
            .bind(now)
            .execute(&mut connection)
            .await
            .expect("seeded");
        }
    }
}

/// Now, in microseconds since the epoch.
fn chrono_micros() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch");
    i64::try_from(since.as_micros()).expect("fits")
}

/// Opens a CSV export of `organization` with a small receive buffer and reads nothing.
async fn stalled_export(app: &TestApp, organization: i64) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small buffer");
    let mut stream = socket.connect(app.address).await.expect("connected");
    let request = format!(
        "GET /organizations/{organization}/opt_outs/?format=csv HTTP/1.1\r\nHost: orgs.test\r\n\
         Authorization: Bearer {}\r\n\r\n",
        app.admin_key
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    stream
}

async fn csv_cells_that_start_like_a_formula_come_out_with_a_quote_mark(app: TestApp) {
    let path = format!("/organizations/{}/opt_outs/", app.root_id);
    for address in [
        "=cmd|'/Ccalc'!A0@example.com",
        "+1@example.com",
        "-2@example.com",
        "plain@example.com",
    ] {
        let recorded = app
            .post(&path, Some(&app.admin_key), &json!({"address": address}))
            .await;
        assert_eq!(recorded.status, 201, "{address}: {}", recorded.text);
    }

    let csv = app.get(&format!("{path}?format=csv"), &app.admin_key).await;

    assert_eq!(csv.status, 200);
    let addresses: Vec<&str> = csv
        .text
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .collect();
    assert_eq!(
        addresses,
        [
            "plain@example.com",
            "'-2@example.com",
            "'+1@example.com",
            "'=cmd|'/Ccalc'!A0@example.com"
        ]
    );
}

/// Twenty clients that open an export and read nothing hold no database connection:
/// once their exports have filled the socket buffers and stalled, `/me/` answers within
/// a second, again and again. (Filling the buffers costs CPU for a moment; the stalled
/// exports are kept open far longer than the test by a long write timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_answers_within_a_second_while_twenty_exports_are_stalled() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app_with_options(
            backend,
            SpawnOptions {
                connections: ConnectionLimits {
                    write_stall: Duration::from_secs(600),
                    ..ConnectionLimits::default()
                },
                ..SpawnOptions::default()
            },
        )
        .await;
        seed_opt_outs(&app, app.root_id, MANY).await;
        let mut stalled = Vec::new();
        for _ in 0..20 {
            stalled.push(stalled_export(&app, app.root_id).await);
        }

        let deadline = Instant::now() + Duration::from_secs(60);
        let mut quick_in_a_row = 0;
        let mut slowest = Duration::ZERO;
        while quick_in_a_row < 5 && Instant::now() < deadline {
            let started = Instant::now();
            let me = tokio::time::timeout(Duration::from_secs(15), app.get("/me/", &app.admin_key))
                .await;
            let took = started.elapsed();
            let answered = me.is_ok_and(|me| me.status == 200);
            if answered && took < Duration::from_secs(1) {
                quick_in_a_row += 1;
            } else {
                quick_in_a_row = 0;
                slowest = slowest.max(took);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        assert_eq!(
            quick_in_a_row, 5,
            "{backend:?}: /me/ never answered within 1 s five times in a row (slowest {slowest:?})"
        );
        drop(stalled);
    }
}

/// A client that reads none of its export for longer than the write timeout is dropped:
/// what it reads afterwards is what the socket buffers held, without the end of the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_export_reader_is_dropped_after_the_write_timeout() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app_with_options(
            backend,
            SpawnOptions {
                connections: ConnectionLimits {
                    write_stall: Duration::from_secs(2),
                    ..ConnectionLimits::default()
                },
                ..SpawnOptions::default()
            },
        )
        .await;
        seed_opt_outs(&app, app.root_id, MANY).await;
        let mut stream = stalled_export(&app, app.root_id).await;
        // Time to fill the socket buffers, stall, and be dropped 2 s later.
        tokio::time::sleep(Duration::from_secs(10)).await;

        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), async {
            stream.read_to_end(&mut received).await
        })
        .await
        .expect("the connection ends");

        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 200"), "{backend:?}");
        let rows = text.matches("@example.com").count();
        assert!(
            read.is_err() || !text.ends_with("\r\n0\r\n\r\n"),
            "{backend:?}: the whole body arrived"
        );
        assert!(
            rows < usize::try_from(MANY).expect("fits"),
            "{backend:?}: {rows} rows"
        );
    }
}

/// A reader that keeps up gets every row once, in the list order, across many pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_export_has_every_row_once_newest_first() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app_with_options(backend, SpawnOptions::default()).await;
        let count = 2 * i64::from(EXPORT_PAGE_ROWS) + 500;
        seed_opt_outs(&app, app.root_id, count).await;

        let csv = app
            .get(
                &format!("/organizations/{}/opt_outs/?format=csv", app.root_id),
                &app.admin_key,
            )
            .await;

        let addresses: Vec<String> = csv
            .text
            .lines()
            .skip(1)
            .filter_map(|line| line.split(',').next().map(str::to_owned))
            .collect();
        let expected: Vec<String> = (1..=count)
            .map(|n| format!("bulk{n}@example.com"))
            .collect();
        assert_eq!(addresses, expected, "{backend:?}");
    }
}

/// A stored row that is no opt-out (its address is no address), on a page after the
/// first, ends the export with an error: the body is cut, not finished without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_row_after_the_first_page_ends_the_export_with_an_error() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app_with_options(backend, SpawnOptions::default()).await;
        let count = 2 * i64::from(EXPORT_PAGE_ROWS) + 500;
        seed_opt_outs(&app, app.root_id, count).await;
        let beside = format!("bulk{}@example.com", i64::from(EXPORT_PAGE_ROWS) + 1000);
        let corrupt = "insert into opt_outs (organization_id, address, origin, creation_date) \
             select organization_id, 'no address', origin, creation_date \
             from opt_outs where address = $1";
        match backend {
            Backend::Postgres | Backend::PgBouncer => {
                let mut connection = sqlx::PgConnection::connect(&app.database_url)
                    .await
                    .expect("connected");
                sqlx::query(corrupt)
                    .bind(&beside)
                    .execute(&mut connection)
                    .await
                    .expect("inserted");
            }
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&app.database_url)
                    .await
                    .expect("connected");
                sqlx::query(corrupt)
                    .bind(&beside)
                    .execute(&mut connection)
                    .await
                    .expect("inserted");
            }
        }

        let response = app
            .request(
                reqwest::Method::GET,
                &format!("/organizations/{}/opt_outs/?format=csv", app.root_id),
                Some(&app.admin_key),
            )
            .send()
            .await
            .expect("an answer");
        let status = response.status();
        let body = response.text().await;

        assert_eq!(status, 200, "{backend:?}: the first page is sound");
        assert!(body.is_err(), "{backend:?}: the body is cut");
    }
}

/// A client that sends half its headers and stalls is disconnected after the 10 s
/// header timeout: not before 10 s, and well before 15 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalled_mid_headers_is_disconnected_after_ten_seconds() {
    let app = spawn_app_with_options(Backend::Sqlite, SpawnOptions::default()).await;
    let mut stream = TcpStream::connect(app.address).await.expect("connected");
    stream
        .write_all(b"GET /me/ HTTP/1.1\r\nHost: orgs.test\r\nAuthor")
        .await
        .expect("half the headers sent");

    let started = Instant::now();
    let mut received = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        stream.read_to_end(&mut received).await
    })
    .await;
    let took = started.elapsed();

    assert!(ended.is_ok(), "still connected after 20 s");
    assert!(took >= Duration::from_secs(9), "dropped after {took:?}");
    assert!(took < Duration::from_secs(15), "dropped after {took:?}");
}
