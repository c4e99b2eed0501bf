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

/// Writes `/organizations/{id}/`, or `/organizations/{id}/{sub}/` with a `sub`, into `out`:
/// what [`organization`] and [`organization_sub`] return, without a `String` or a
/// formatter of its own (a page writes four links per organization).
pub fn write_organization(out: &mut Vec<u8>, id: OrganizationId, sub: Option<&str>) {
    out.extend_from_slice(b"/organizations/");
    write_integer(out, id.get());
    out.push(b'/');
    if let Some(sub) = sub {
        out.extend_from_slice(sub.as_bytes());
        out.push(b'/');
    }
}

/// How many bytes `Display` writes for `value` (its digits, and a `-` when negative).
#[must_use]
pub fn integer_len(value: i64) -> usize {
    let digits = value
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |log| log as usize + 1);
    digits + usize::from(value < 0)
}

/// The decimal digits of `value`, as `Display` writes them.
pub(crate) fn write_integer(out: &mut Vec<u8>, value: i64) {
    let mut digits = [0_u8; 20];
    let mut start = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        start -= 1;
        // `rest % 10` is a digit: it fits a `u8`.
        digits[start] = b'0' + u8::try_from(rest % 10).unwrap_or_default();
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[start..]);
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

/// Appends `timestamp(at)` to `out`; without an allocation nor a formatter for the years
/// 0 to 9999 (every other instant, and a leap second, goes through `timestamp`).
pub fn push_timestamp(out: &mut String, at: domain::Timestamp) {
    use chrono::{Datelike as _, Timelike as _};
    let nanos = at.nanosecond();
    let year = at.year();
    let (Ok(year), true) = (u32::try_from(year), nanos < 1_000_000_000) else {
        out.push_str(&timestamp(at));
        return;
    };
    if year > 9999 {
        out.push_str(&timestamp(at));
        return;
    }
    let micros = nanos / 1000;
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |end: usize, digits: usize, mut value: u32| {
        for at in (end - digits..end).rev() {
            text[at] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(4, 4, year);
    put(7, 2, at.month());
    put(10, 2, at.day());
    put(13, 2, at.hour());
    put(16, 2, at.minute());
    put(19, 2, at.second());
    let text: &[u8] = if micros == 0 {
        text[19] = b'Z';
        &text[..20]
    } else {
        put(26, 6, micros);
        &text
    };
    // Only ASCII digits, `-`, `T`, `:`, `.` and `Z` were written.
    out.push_str(std::str::from_utf8(text).unwrap_or_default());
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
    fn written_organization_links_are_the_returned_ones() {
        for id in [0, 1, 9, 10, 42, 1_000_007, -3, i64::MAX, i64::MIN] {
            let id = OrganizationId::new(id);
            let mut out = Vec::new();
            write_organization(&mut out, id, None);
            write_organization(&mut out, id, Some("children"));

            let expected = organization(id) + &organization_sub(id, "children");
            assert_eq!(String::from_utf8_lossy(&out), expected);
        }
    }

    #[test]
    fn timestamps_are_utc_with_a_z_and_microseconds_only_when_present() {
        let whole = chrono::Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).single();
        let whole = whole.unwrap_or_default();
        let fraction = whole + chrono::TimeDelta::microseconds(1500);

        assert_eq!(timestamp(whole), "2024-05-01T12:00:00Z");
        assert_eq!(timestamp(fraction), "2024-05-01T12:00:00.001500Z");
    }

    #[test]
    fn a_timestamp_appended_is_the_timestamp_whatever_its_year() {
        let micros = [
            0,
            1,
            1_714_564_800_000_000,
            1_714_564_800_001_500,
            253_402_300_799_999_999,
            253_402_300_800_000_000,
            -62_167_219_200_000_000,
            -62_167_219_200_000_001,
            i64::MAX,
            i64::MIN,
        ];
        for at in micros
            .into_iter()
            .filter_map(chrono::DateTime::from_timestamp_micros)
        {
            let mut out = String::from("x");
            push_timestamp(&mut out, at);
            assert_eq!(out, format!("x{}", timestamp(at)));
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .map(|at| at.and_utc())
            .expect("a leap second");
        let mut out = String::new();
        push_timestamp(&mut out, leap);
        assert_eq!(out, timestamp(leap));
    }

    proptest::proptest! {
        #[test]
        fn any_timestamp_appended_is_the_timestamp(
            seconds in proptest::prelude::any::<i64>(),
            nanos in 0_u32..2_000_000_000,
            whole_micros in proptest::prelude::any::<bool>(),
        ) {
            let nanos = if whole_micros { nanos / 1000 * 1000 } else { nanos };
            if let Some(at) = chrono::DateTime::from_timestamp(seconds % 400_000_000_000, nanos) {
                let mut out = String::new();
                push_timestamp(&mut out, at);
                proptest::prop_assert_eq!(out, timestamp(at));
            }
        }
    }
}
