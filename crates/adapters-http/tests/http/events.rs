//! The audit log: the request id reaches the use case, raw filters are passed on, and an
//! event is represented as CONTRACT §13 shows it.

use axum::http::StatusCode;
use domain::audit::{Event, EventAction, StoredTarget};
use domain::user::MemberRef;
use domain::{EventId, OrganizationId, UserId};
use ports::inbound::MemberLink;
use serde_json::json;

use crate::support::{Mocks, at, page, request, send};

fn role_change() -> Event {
    Event {
        id: EventId::new(41),
        action: EventAction::MemberRoleChanged,
        actor: Some(MemberRef {
            organization_id: OrganizationId::new(1),
            user_id: UserId::new(1),
        }),
        actor_identifier: "admin@example.com".to_owned(),
        organization: OrganizationId::new(2),
        target: Some(StoredTarget::Member(UserId::new(7))),
        changes: r#"{"role": ["users", "managers"]}"#.to_owned(),
        request_id: Some("req-7".to_owned()),
        created_at: at(0),
    }
}

#[tokio::test]
async fn the_list_passes_the_request_id_and_filters_and_shows_events_as_the_contract() {
    let mut mocks = Mocks::new();
    mocks
        .events
        .expect_list()
        .withf(|actor, organization, query, _| {
            actor.request_id.as_ref().map(|id| id.as_str()) == Some("req-7")
                && *organization == OrganizationId::new(2)
                && query.action.as_deref() == Some("member.*")
                && query.actor
                    == Some(MemberLink::Member {
                        organization: OrganizationId::new(1),
                        user: UserId::new(1),
                    })
                && query.since.as_deref() == Some("2025-04-03")
                && query.until.is_none()
        })
        .times(1)
        .returning(|_, _, _, _| Ok(page(vec![role_change()], 1, 1, 50)));
    let mut asked = request(
        "GET",
        "/organizations/2/events/?action=member.*&actor=/organizations/1/users/1/&since=2025-04-03",
    );
    asked
        .headers_mut()
        .insert("x-request-id", "req-7".parse().expect("header"));

    let answer = send(mocks.router(), asked).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json()["results"][0],
        json!({
            "id": 41,
            "action": "member.role_changed",
            "actor": "/organizations/1/users/1/",
            "actor_identifier": "admin@example.com",
            "organization": "/organizations/2/",
            "target": "/organizations/2/users/7/",
            "changes": {"role": ["users", "managers"]},
            "request_id": "req-7",
            "created_at": "2024-05-01T12:00:00Z",
        })
    );
}

#[tokio::test]
async fn an_operator_event_has_no_actor_and_an_opt_out_no_target() {
    let mut mocks = Mocks::new();
    mocks.events.expect_list().returning(|_, _, _, _| {
        let event = Event {
            action: EventAction::OptOutRecorded,
            actor: None,
            actor_identifier: "operator".to_owned(),
            target: None,
            request_id: None,
            ..role_change()
        };
        Ok(page(vec![event], 1, 1, 50))
    });

    let answer = send(mocks.router(), request("GET", "/organizations/2/events")).await;

    let event = &answer.json()["results"][0];
    assert_eq!(event["actor"], json!(null));
    assert_eq!(event["actor_identifier"], "operator");
    assert_eq!(event["target"], json!(null));
    assert_eq!(event["request_id"], json!(null));
}

#[tokio::test]
async fn a_filter_that_is_no_member_url_reaches_the_use_case_as_no_url_match() {
    let mut mocks = Mocks::new();
    mocks
        .events
        .expect_list()
        .withf(|_, _, query, _| query.actor == Some(MemberLink::NoUrlMatch))
        .times(1)
        .returning(|_, _, _, _| Ok(page(Vec::new(), 0, 1, 50)));

    let answer = send(
        mocks.router(),
        request("GET", "/organizations/2/events/?actor=/organizations/1/"),
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK);
}
