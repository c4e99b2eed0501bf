//! E-mail over real SMTP: invitations arrive with a working token, an outage loses
//! nothing, and a refused recipient ends dead instead of being retried forever.

use std::sync::Arc;
use std::time::Duration;

use app::delivery::DeliveryPolicy;
use app::server;
use orgs_tests::{Backend, SmtpServer, SpawnOptions, TestApp, spawn_app_with_options, token_in};
use serde_json::json;

async fn app_sending_to(backend: Backend, smtp: &SmtpServer) -> TestApp {
    let mailer = server::mailer(Some(&smtp.url()), "orgs <noreply@orgs.test>").expect("mailer");
    spawn_app_with_options(
        backend,
        SpawnOptions {
            mailer: Some(Arc::clone(&mailer)),
            delivery: DeliveryPolicy {
                base_delay: domain::Duration::milliseconds(100),
                max_delay: domain::Duration::milliseconds(500),
                max_attempts: 1_000,
                idle_poll: Duration::from_millis(20),
                ..DeliveryPolicy::default()
            },
            ..SpawnOptions::default()
        },
    )
    .await
}

/// Waits up to `seconds` for `done`.
async fn eventually(seconds: u64, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..seconds * 20 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

fn decoded(raw: &str) -> String {
    // Quoted-printable soft line breaks and `=3D` would split the token.
    raw.replace("=\r\n", "").replace("=3D", "=")
}

async fn an_invitation_arrives_by_smtp_with_a_working_token(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp).await;

    let invited = app
        .post(
            &format!("/organizations/{}/invite_user/", app.root_id),
            Some(&app.admin_key),
            &json!({"identifier": "smtp@example.com"}),
        )
        .await;
    assert_eq!(invited.status, 201);
    assert!(
        eventually(20, || !smtp.received().is_empty()).await,
        "no e-mail arrived"
    );
    let (to, raw) = smtp.received().remove(0);
    let token = token_in(&decoded(&raw)).expect("a token in the e-mail");
    let accepted = app
        .post(
            "/invitations/accept/",
            None,
            &json!({"token": token, "password": "long enough", "first_name": "S", "last_name": "M"}),
        )
        .await;

    assert_eq!(to, ["smtp@example.com"]);
    assert!(raw.contains("multipart/alternative"));
    assert_eq!(accepted.status, 201, "{}", accepted.text);
}

async fn an_outage_during_fifty_invitations_loses_none(backend: Backend) {
    let mut smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp).await;
    smtp.halt();

    for index in 0..50 {
        let invited = app
            .post(
                &format!("/organizations/{}/invite_user/", app.root_id),
                Some(&app.admin_key),
                &json!({"identifier": format!("outage{index}@example.com")}),
            )
            .await;
        assert_eq!(invited.status, 201, "{}", invited.text);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.outbox_backlog().await > 0);
    smtp.resume().await;

    assert!(
        eventually(60, || smtp.received().len() >= 50).await,
        "only {} of 50 arrived",
        smtp.received().len()
    );
    let mut recipients: Vec<String> = smtp.received().into_iter().flat_map(|(to, _)| to).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 50);
    assert_eq!(app.outbox_backlog().await, 0);
}

async fn a_refused_recipient_ends_dead_not_retried(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp).await;

    let invited = app
        .post(
            &format!("/organizations/{}/invite_user/", app.root_id),
            Some(&app.admin_key),
            &json!({"identifier": "reject-me@example.com"}),
        )
        .await;
    assert_eq!(invited.status, 201);

    let mut drained = false;
    for _ in 0..200 {
        if app.outbox_backlog().await == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(drained, "the refused message is still waiting");
    assert!(smtp.received().is_empty());
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
    an_invitation_arrives_by_smtp_with_a_working_token,
    an_outage_during_fifty_invitations_loses_none,
    a_refused_recipient_ends_dead_not_retried,
);
