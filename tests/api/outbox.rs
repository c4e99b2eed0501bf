//! What the outbox keeps at rest (CONTRACT §9): once an invitation e-mail is delivered
//! or dead, no trace of its token is left in the outbox table, and the token still
//! works (the invitation itself keeps only the token's hash).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::mail::OutgoingEmail;
use orgs_tests::{Backend, SpawnOptions, TestApp, spawn_app, spawn_app_with_options, token_in};
use ports::outbound::{MailError, Mailer};
use serde_json::json;
use sqlx::Connection as _;

/// Every row of `table`, each as the text of all its columns, read directly.
async fn rows_of(app: &TestApp, table: &str) -> Vec<String> {
    match app.backend {
        Backend::Postgres | Backend::PgBouncer => {
            let mut connection = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connects");
            let rows: Vec<(String,)> =
                sqlx::query_as(&format!("select row_to_json(t)::text from {table} t"))
                    .fetch_all(&mut connection)
                    .await
                    .expect("rows");
            rows.into_iter().map(|(row,)| row).collect()
        }
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("opens");
            let columns: Vec<(String,)> = sqlx::query_as("select name from pragma_table_info($1)")
                .bind(table)
                .fetch_all(&mut connection)
                .await
                .expect("columns");
            assert!(!columns.is_empty(), "no table {table}");
            let row = columns
                .iter()
                .map(|(name,)| format!("'{name}=' || coalesce(cast({name} as text), 'null')"))
                .collect::<Vec<_>>()
                .join(" || ' ' || ");
            let rows: Vec<(String,)> = sqlx::query_as(&format!("select {row} from {table}"))
                .fetch_all(&mut connection)
                .await
                .expect("rows");
            rows.into_iter().map(|(row,)| row).collect()
        }
    }
}

/// Waits up to 10 s for the outbox to have nothing left to deliver.
async fn drained(app: &TestApp) {
    for _ in 0..500 {
        if app.outbox_backlog().await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the outbox still has messages to deliver");
}

async fn invite(app: &TestApp, identifier: &str) {
    let invited = app
        .post(
            &format!("/organizations/{}/invite_user/", app.root_id),
            Some(&app.admin_key),
            &json!({"identifier": identifier}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.text);
}

async fn a_delivered_invitation_leaves_no_token_in_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    invite(&app, "at-rest@example.com").await;
    let token = app.token_sent_to("at-rest@example.com").await;
    drained(&app).await;

    let outbox = rows_of(&app, "outbox").await;
    let invitations = rows_of(&app, "invitations").await;
    let accepted = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": token, "password": "long enough", "first_name": "A", "last_name": "R"}),
        )
        .await;

    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert!(outbox[0].contains("at-rest@example.com"), "{outbox:?}");
    assert!(
        outbox.iter().all(|row| !row.contains(&token)),
        "the token is still in the outbox: {outbox:?}"
    );
    assert_eq!(invitations.len(), 1);
    assert!(invitations.iter().all(|row| !row.contains(&token)));
    assert_eq!(accepted.status, 201, "{}", accepted.text);
}

/// A mailer that keeps what it is given and refuses it for good, as an SMTP server
/// answering `550` does.
#[derive(Clone, Default)]
struct RefusingMailer {
    refused: Arc<Mutex<Vec<OutgoingEmail>>>,
}

#[async_trait]
impl Mailer for RefusingMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        self.refused
            .lock()
            .expect("mailer lock")
            .push(email.clone());
        Err(MailError::permanent("550 no such user".to_owned()))
    }
}

async fn a_dead_invitation_leaves_no_token_in_the_outbox(backend: Backend) {
    let mailer = RefusingMailer::default();
    let app = spawn_app_with_options(
        backend,
        SpawnOptions {
            mailer: Some(Arc::new(mailer.clone())),
            ..SpawnOptions::default()
        },
    )
    .await;
    invite(&app, "refused@example.com").await;
    drained(&app).await;
    let refused = mailer.refused.lock().expect("mailer lock").clone();
    let token = token_in(&refused[0].text).expect("a token in the e-mail");

    let outbox = rows_of(&app, "outbox").await;

    assert_eq!(refused.len(), 1);
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert!(outbox[0].contains("550 no such user"), "{outbox:?}");
    assert!(
        !outbox[0].contains(&token),
        "the token is still in the outbox: {outbox:?}"
    );
}

macro_rules! on_both {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(orgs_tests::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(orgs_tests::Backend::Postgres).await;
                }
            }
        )+
    };
}

on_both!(
    a_delivered_invitation_leaves_no_token_in_the_database,
    a_dead_invitation_leaves_no_token_in_the_outbox,
);
