//! Abuse limits: failed logins and invitation e-mails (CONTRACT §5c), with small
//! configured limits so that the thresholds are crossed quickly.

use app::usecases::AbuseLimits;
use domain::limits::RateLimit;
use orgs_tests::{Backend, spawn_app_with};
use serde_json::json;

fn small_limits() -> AbuseLimits {
    AbuseLimits {
        login_failures: RateLimit::parse("10/15m").expect("valid"),
        invites_per_recipient: RateLimit::parse("2/1h").expect("valid"),
        invites_per_organization: RateLimit::parse("4/1h").expect("valid"),
    }
}

mod failed_logins {
    use super::*;

    async fn after_ten_failures_even_the_right_password_is_throttled(backend: Backend) {
        // The default limit, 10 failures in 15 minutes, crossed exactly.
        let app = spawn_app_with(backend, AbuseLimits::default()).await;
        app.add_user(app.root_id, "target@example.com", "users")
            .await;
        let wrong = json!({"identifier": "target@example.com", "password": "wrong password"});
        let right =
            json!({"identifier": "target@example.com", "password": "correct horse battery"});

        let mut statuses = Vec::new();
        for _ in 0..10 {
            statuses.push(app.post("/auth/token/", None, &wrong).await.status);
        }
        let throttled = app.post("/auth/token/", None, &right).await;
        let other = app
            .post(
                "/auth/token/",
                None,
                &json!({"identifier": "other@example.com", "password": "x"}),
            )
            .await;

        assert_eq!(statuses, [400; 10]);
        assert_eq!(throttled.status, 429, "{}", throttled.text);
        assert!(
            throttled
                .header("retry-after")
                .and_then(|value| value.parse::<u64>().ok())
                .is_some_and(|seconds| seconds > 0 && seconds <= 15 * 60)
        );
        assert!(throttled.body["detail"].is_string());
        assert_eq!(other.status, 400);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        after_ten_failures_even_the_right_password_is_throttled(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        after_ten_failures_even_the_right_password_is_throttled(Backend::Postgres).await;
    }
}

mod invitation_emails {
    use super::*;

    async fn recipients_and_organizations_have_hourly_allowances(backend: Backend) {
        let app = spawn_app_with(backend, small_limits()).await;
        let root = app.root_id;
        let path = format!("/organizations/{root}/invite_user/");

        let first = app
            .post(
                &path,
                Some(&app.admin_key),
                &json!({"identifier": "r@example.com"}),
            )
            .await;
        let resent = app
            .post(
                &format!("{}resend/", first.body["url"].as_str().expect("url")),
                Some(&app.admin_key),
                &json!({}),
            )
            .await;
        let third = app
            .post(
                &format!("{}resend/", first.body["url"].as_str().expect("url")),
                Some(&app.admin_key),
                &json!({}),
            )
            .await;
        let others: Vec<u16> = {
            let mut statuses = Vec::new();
            // The second a@ is refused (already invited) and takes no allowance.
            for address in [
                "a@example.com",
                "a@example.com",
                "b@example.com",
                "c@example.com",
            ] {
                statuses.push(
                    app.post(&path, Some(&app.admin_key), &json!({"identifier": address}))
                        .await
                        .status,
                );
            }
            statuses
        };

        assert_eq!(first.status, 201);
        assert_eq!(resent.status, 202, "{}", resent.text);
        assert_eq!(third.status, 429, "{}", third.text);
        assert!(third.header("retry-after").is_some());
        // Two e-mails so far; the organization allows four in the hour.
        assert_eq!(others, [201, 400, 201, 429]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        recipients_and_organizations_have_hourly_allowances(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        recipients_and_organizations_have_hourly_allowances(Backend::Postgres).await;
    }
}
