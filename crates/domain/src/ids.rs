//! Typed identifiers, so that a user id can never be passed where an organization id is meant.

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a stored id.
            #[must_use]
            pub const fn new(value: i64) -> Self {
                Self(value)
            }

            /// The raw value, for storage and URLs.
            #[must_use]
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

typed_id!(
    /// The id of an organization.
    OrganizationId
);
typed_id!(
    /// The id of a user.
    UserId
);
typed_id!(
    /// The id of an API key.
    ApiKeyId
);
typed_id!(
    /// The id of an invitation.
    InvitationId
);
typed_id!(
    /// The id of a message in the e-mail outbox.
    OutboxMessageId
);
typed_id!(
    /// The id of an audit-log event.
    EventId
);
typed_id!(
    /// The id of a webhook.
    WebhookId
);
typed_id!(
    /// The id of one delivery of an event to a webhook.
    DeliveryId
);
typed_id!(
    /// The id of one counted event of an abuse limit.
    RateEventId
);

/// The version of a stored row, for optimistic concurrency (`ETag`/`If-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(i64);

impl Version {
    /// The version of a row just created.
    pub const FIRST: Version = Version(1);

    /// Wraps a stored version.
    #[must_use]
    pub const fn new(value: i64) -> Self {
        Self(value)
    }

    /// The raw value.
    #[must_use]
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The version after one more change.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_shows_as_its_number() {
        assert_eq!(OrganizationId::new(42).to_string(), "42");
        assert_eq!(UserId::new(7).get(), 7);
    }

    #[test]
    fn a_version_counts_up_from_one() {
        assert_eq!(Version::FIRST.next(), Version::new(2));
    }
}
