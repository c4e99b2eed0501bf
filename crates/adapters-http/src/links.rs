//! The root-relative links the API emits; every one ends in `/` (CONTRACT §2).

use domain::user::MemberRef;
use domain::{DeliveryId, InvitationId, OrganizationId, UserId, WebhookId};

/// `/organizations/{id}/`.
#[must_use]
pub fn organization(id: OrganizationId) -> String {
    format!("/organizations/{id}/")
}

/// `/organizations/{id}/{sub}/`.
#[must_use]
pub fn organization_sub(id: OrganizationId, sub: &str) -> String {
    format!("/organizations/{id}/{sub}/")
}

/// A member's URL, `/organizations/{org}/users/{id}/`.
#[must_use]
pub fn member(organization: OrganizationId, user: UserId) -> String {
    format!("/organizations/{organization}/users/{user}/")
}

/// A member's URL from a reference.
#[must_use]
pub fn member_ref(member_ref: MemberRef) -> String {
    member(member_ref.organization_id, member_ref.user_id)
}

/// `/organizations/{org}/invitations/{id}/`.
#[must_use]
pub fn invitation(organization: OrganizationId, invitation: InvitationId) -> String {
    format!("/organizations/{organization}/invitations/{invitation}/")
}

/// `/organizations/{org}/webhooks/{id}/`.
#[must_use]
pub fn webhook(organization: OrganizationId, webhook: WebhookId) -> String {
    format!("/organizations/{organization}/webhooks/{webhook}/")
}

/// `/organizations/{org}/webhooks/{webhook}/deliveries/{id}/`.
#[must_use]
pub fn delivery(organization: OrganizationId, webhook: WebhookId, delivery: DeliveryId) -> String {
    format!("/organizations/{organization}/webhooks/{webhook}/deliveries/{delivery}/")
}

/// A path with a trailing slash added when it has none.
#[must_use]
pub fn with_trailing_slash(path: &str) -> String {
    if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

/// ISO 8601 in UTC as DRF writes it: `Z`, microseconds only when there are some.
#[must_use]
pub fn timestamp(at: domain::Timestamp) -> String {
    let format = if at.timestamp_subsec_micros() == 0 {
        chrono::SecondsFormat::Secs
    } else {
        chrono::SecondsFormat::Micros
    };
    at.to_rfc3339_opts(format, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn links_end_in_a_slash() {
        assert_eq!(organization(OrganizationId::new(2)), "/organizations/2/");
        assert_eq!(
            organization_sub(OrganizationId::new(2), "opt_outs"),
            "/organizations/2/opt_outs/"
        );
        assert_eq!(
            member(OrganizationId::new(1), UserId::new(5)),
            "/organizations/1/users/5/"
        );
        assert_eq!(with_trailing_slash("/organizations"), "/organizations/");
        assert_eq!(with_trailing_slash("/organizations/"), "/organizations/");
    }

    #[test]
    fn timestamps_are_utc_with_a_z_and_microseconds_only_when_present() {
        let whole = chrono::Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).single();
        let whole = whole.unwrap_or_default();
        let fraction = whole + chrono::TimeDelta::microseconds(1500);

        assert_eq!(timestamp(whole), "2024-05-01T12:00:00Z");
        assert_eq!(timestamp(fraction), "2024-05-01T12:00:00.001500Z");
    }
}
