//! E-mail addresses, validated like Django's `EmailValidator` and normalized like its
//! `normalize_email`: the domain part is lower-cased, the local part is kept as given.

use crate::validation::{ErrorCode, trimmed};

/// The longest address accepted, as Django's validator (RFC 3696 errata).
const MAX_LENGTH: usize = 320;

/// A valid e-mail address with its domain part lower-cased.
///
/// Two addresses that differ only in the case of their domain are equal, so that
/// identifiers compare as CONTRACT §5 says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Validates and normalizes an address (surrounding white space is trimmed).
    ///
    /// # Errors
    /// `Blank` for an empty value, `InvalidEmail` for anything that is no address.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        let value = trimmed(value);
        if value.is_empty() {
            return Err(ErrorCode::Blank);
        }
        if value.chars().count() > MAX_LENGTH {
            return Err(ErrorCode::InvalidEmail);
        }
        let (local, domain) = value.rsplit_once('@').ok_or(ErrorCode::InvalidEmail)?;
        if !is_valid_local_part(local) || !is_valid_domain(domain) {
            return Err(ErrorCode::InvalidEmail);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The normalized address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`, lower-cased.
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 5322 dot-atom: atoms of allowed characters separated by single dots.
fn is_valid_local_part(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
        })
}

/// `localhost`, or dot-separated labels of letters, digits and inner dashes, with a
/// top-level label of at least two characters that does not end with a dash.
fn is_valid_domain(domain: &str) -> bool {
    if domain.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else {
        return false;
    };
    let is_label = |label: &str| {
        let length = label.chars().count();
        (1..=63).contains(&length)
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let tld_length = tld.chars().count();
    !rest.is_empty()
        && rest.iter().all(|label| is_label(label))
        && (2..=63).contains(&tld_length)
        && tld.chars().all(|c| c.is_alphanumeric() || c == '-')
        && !tld.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_domain_part_is_lower_cased_and_the_local_part_kept() {
        let address = EmailAddress::parse("John.Doe@Example.COM").expect("valid");

        assert_eq!(address.as_str(), "John.Doe@example.com");
        assert_eq!(address.domain(), "example.com");
    }

    #[test]
    fn addresses_differing_only_in_domain_case_are_equal() {
        assert_eq!(
            EmailAddress::parse("new@EXAMPLE.com"),
            EmailAddress::parse("new@example.com")
        );
        assert_ne!(
            EmailAddress::parse("New@example.com"),
            EmailAddress::parse("new@example.com")
        );
    }

    #[test]
    fn surrounding_white_space_is_trimmed() {
        assert_eq!(
            EmailAddress::parse("  a@b.co ").map(|a| a.to_string()),
            Ok("a@b.co".to_owned())
        );
    }

    #[test]
    fn an_empty_address_is_blank() {
        assert_eq!(EmailAddress::parse(""), Err(ErrorCode::Blank));
        assert_eq!(EmailAddress::parse("   "), Err(ErrorCode::Blank));
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "plainaddress",
            "@example.com",
            "user@",
            "user@example",
            "user@example.c",
            "user@-example.com",
            "user@example-.com",
            "user@example.com-",
            "user@exa mple.com",
            "us er@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@@example.com",
            "user@example..com",
            "user@.example.com",
        ] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(ErrorCode::InvalidEmail),
                "{bad}"
            );
        }
    }

    #[test]
    fn common_valid_addresses_are_accepted() {
        for good in [
            "child@example.com",
            "first.last+tag@mail.example.org",
            "o'brien@example.ie",
            "user@localhost",
            "x@a-b.io",
            "user@123.example.com",
        ] {
            assert!(EmailAddress::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn an_address_of_more_than_320_characters_is_refused() {
        let long = format!("{}@example.com", "a".repeat(309));
        assert_eq!(long.len(), 321);

        assert_eq!(EmailAddress::parse(&long), Err(ErrorCode::InvalidEmail));
        assert!(EmailAddress::parse(&long[1..]).is_ok());
    }

    proptest! {
        #[test]
        fn generated_addresses_parse_with_a_lower_cased_domain(
            local in "[A-Za-z0-9_+-]{1,20}(\\.[A-Za-z0-9_+-]{1,10}){0,2}",
            labels in proptest::collection::vec("[A-Za-z0-9]{1,10}", 1..4),
            tld in "[A-Za-z]{2,8}",
        ) {
            let domain = format!("{}.{tld}", labels.join("."));
            let raw = format!("{local}@{domain}");

            let address = EmailAddress::parse(&raw).expect("generated address is valid");

            prop_assert_eq!(address.as_str(), format!("{local}@{}", domain.to_lowercase()));
            prop_assert_eq!(EmailAddress::parse(address.as_str()), Ok(address.clone()));
        }

        #[test]
        fn anything_without_an_at_sign_is_refused(value in "[^@]{1,40}") {
            prop_assert!(EmailAddress::parse(&value).is_err());
        }
    }
}
