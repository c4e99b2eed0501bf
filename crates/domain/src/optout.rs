//! Opt-outs: addresses that asked an organization to stop mailing them (CONTRACT §6).

use crate::email::EmailAddress;
use crate::ids::OrganizationId;
use crate::time::Timestamp;
use crate::validation::{ErrorCode, Input, ValidationErrors, filter_text};

/// How an opt-out reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptOutOrigin {
    /// A reply by e-mail.
    Mail,
    /// A web page.
    Web,
    /// A mailbox provider's feedback loop.
    FeedbackLoop,
    /// A bounce.
    Bounce,
    /// An abuse report.
    Abuse,
    /// This API.
    Api,
}

impl OptOutOrigin {
    /// Every origin.
    pub const ALL: [OptOutOrigin; 6] = [
        OptOutOrigin::Mail,
        OptOutOrigin::Web,
        OptOutOrigin::FeedbackLoop,
        OptOutOrigin::Bounce,
        OptOutOrigin::Abuse,
        OptOutOrigin::Api,
    ];

    /// The wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            OptOutOrigin::Mail => "mail",
            OptOutOrigin::Web => "web",
            OptOutOrigin::FeedbackLoop => "feedback-loop",
            OptOutOrigin::Bounce => "bounce",
            OptOutOrigin::Abuse => "abuse",
            OptOutOrigin::Api => "api",
        }
    }

    /// Parses a wire or storage name.
    ///
    /// # Errors
    /// `InvalidChoice` naming the value.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        Self::ALL
            .into_iter()
            .find(|origin| origin.as_str() == value)
            .ok_or_else(|| ErrorCode::InvalidChoice {
                value: value.to_owned(),
            })
    }
}

/// An opt-out as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    /// The organization the address opted out of.
    pub organization_id: OrganizationId,
    /// The address.
    pub address: EmailAddress,
    /// Its origin, the latest one recorded.
    pub origin: OptOutOrigin,
    /// When it was (last) recorded.
    pub creation_date: Timestamp,
}

/// Whether recording an opt-out made a new one or updated an existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptOutRecorded {
    /// The address had not opted out of this organization (→ 201).
    Created(OptOut),
    /// The address had opted out already; origin and date were updated (→ 200).
    Updated(OptOut),
}

impl OptOutRecorded {
    /// The opt-out as it now stands.
    #[must_use]
    pub fn opt_out(&self) -> &OptOut {
        match self {
            OptOutRecorded::Created(opt_out) | OptOutRecorded::Updated(opt_out) => opt_out,
        }
    }
}

/// The fields of `POST /organizations/{id}/opt_outs/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptOutRequest {
    /// `address`.
    pub address: Input<String>,
    /// `origin`, `api` when absent.
    pub origin: Input<String>,
}

/// Checks an opt-out request, collecting every problem.
///
/// # Errors
/// Every problem, keyed by field.
pub fn check_opt_out(
    request: OptOutRequest,
) -> Result<(EmailAddress, OptOutOrigin), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let address = errors.collect(
        "address",
        request
            .address
            .required()
            .and_then(|value| EmailAddress::parse(&value)),
    );
    let origin = errors.collect(
        "origin",
        request
            .origin
            .optional()
            .and_then(|value| value.as_deref().map(OptOutOrigin::parse).transpose())
            .map(|origin| origin.unwrap_or(OptOutOrigin::Api)),
    );
    errors.into_result()?;
    match (address, origin) {
        (Some(address), Some(origin)) => Ok((address, origin)),
        // Unreachable: every `None` above recorded an error.
        _ => Err(ValidationErrors::non_field(ErrorCode::Required)),
    }
}

/// Filters of the opt-out list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptOutFilter {
    /// Only this address (compared in its normalized form).
    pub address: Option<String>,
    /// Only this origin.
    pub origin: Option<OptOutOrigin>,
}

impl OptOutFilter {
    /// Builds the filter from `?address=` and `?origin=`, reporting both together.
    ///
    /// # Errors
    /// An unknown origin, keyed `origin`; an address with a NUL or of more than 320
    /// characters, keyed `address`.
    pub fn parse(address: Option<&str>, origin: Option<&str>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let origin = errors.collect("origin", origin.map(OptOutOrigin::parse).transpose());
        let address = errors.collect("address", address.map(filter_text).transpose());
        errors.into_result()?;
        let address = address.flatten().map(|raw| {
            EmailAddress::parse(raw).map_or_else(|_| raw.trim().to_owned(), |a| a.to_string())
        });
        Ok(Self {
            address,
            origin: origin.flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_origin_parses_back_from_its_name() {
        for origin in OptOutOrigin::ALL {
            assert_eq!(OptOutOrigin::parse(origin.as_str()), Ok(origin));
        }
        assert_eq!(OptOutOrigin::FeedbackLoop.as_str(), "feedback-loop");
    }

    #[test]
    fn the_origin_defaults_to_api() {
        let request = OptOutRequest {
            address: Input::Value("gone@Example.com".to_owned()),
            origin: Input::Absent,
        };

        let (address, origin) = check_opt_out(request).expect("valid");

        assert_eq!(address.as_str(), "gone@example.com");
        assert_eq!(origin, OptOutOrigin::Api);
    }

    #[test]
    fn a_bad_address_and_origin_are_reported_together() {
        let request = OptOutRequest {
            address: Input::Value("nope".to_owned()),
            origin: Input::Value("fax".to_owned()),
        };

        let errors = check_opt_out(request).expect_err("refused");

        assert_eq!(
            errors.codes("address"),
            Some(&[ErrorCode::InvalidEmail][..])
        );
        assert!(errors.codes("origin").is_some());
    }

    #[test]
    fn the_filter_normalizes_the_address_and_refuses_unknown_origins() {
        let filter = OptOutFilter::parse(Some("A@B.COM"), Some("bounce")).expect("valid");

        assert_eq!(filter.address.as_deref(), Some("A@b.com"));
        assert_eq!(filter.origin, Some(OptOutOrigin::Bounce));
        assert!(OptOutFilter::parse(None, Some("fax")).is_err());
    }

    #[test]
    fn the_filter_refuses_an_address_with_a_nul_or_too_long() {
        let nul = OptOutFilter::parse(Some("a\0@b.co"), Some("fax")).expect_err("refused");
        let long = OptOutFilter::parse(Some(&"a".repeat(321)), None).expect_err("refused");

        assert_eq!(nul.codes("address"), Some(&[ErrorCode::NullCharacter][..]));
        assert!(nul.codes("origin").is_some());
        assert_eq!(
            long.codes("address"),
            Some(&[ErrorCode::MaxLength { max: 320 }][..])
        );
    }

    #[test]
    fn the_recorded_opt_out_is_the_same_whether_created_or_updated() {
        let opt_out = OptOut {
            organization_id: OrganizationId::new(1),
            address: EmailAddress::parse("a@b.co").expect("valid"),
            origin: OptOutOrigin::Web,
            creation_date: Timestamp::UNIX_EPOCH,
        };

        assert_eq!(OptOutRecorded::Created(opt_out.clone()).opt_out(), &opt_out);
        assert_eq!(OptOutRecorded::Updated(opt_out.clone()).opt_out(), &opt_out);
    }
}
