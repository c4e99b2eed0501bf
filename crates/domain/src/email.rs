//! E-mail addresses, validated like Django's `EmailValidator` and normalized like its
//! `normalize_email`: the domain part is lower-cased, the local part is kept as given.
//!
//! Every accepted address is a fixed point of [`EmailAddress::parse`]: what storage
//! writes parses back to the same value when it is read (CONTRACT §9). A domain whose
//! lower-cased form is no valid domain, is not itself lower-case, or has another number
//! of characters (`İnc.com` becomes `i` + U+0307 + `nc.com`) is refused.

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
    /// For every accepted `x`, `EmailAddress::parse(x.as_str()) == Ok(x)`.
    ///
    /// # Errors
    /// `Blank` for an empty value, `InvalidEmail` for anything that is no address,
    /// including a domain that lower-casing does not leave valid and stable.
    pub fn parse(value: &str) -> Result<Self, ErrorCode> {
        let value = trimmed(value);
        if value.is_empty() {
            return Err(ErrorCode::Blank);
        }
        // No more characters than bytes: only a long value needs counting.
        if value.len() > MAX_LENGTH && value.chars().count() > MAX_LENGTH {
            return Err(ErrorCode::InvalidEmail);
        }
        let (local, domain) = value.rsplit_once('@').ok_or(ErrorCode::InvalidEmail)?;
        if !is_valid_local_part(local) {
            return Err(ErrorCode::InvalidEmail);
        }
        // The usual case, a domain already in ASCII lower case (every stored address):
        // lower-casing changes nothing, so the address is the value itself.
        if domain
            .bytes()
            .all(|byte| byte.is_ascii() && !byte.is_ascii_uppercase())
        {
            return if is_valid_domain(domain) {
                Ok(Self(value.to_owned()))
            } else {
                Err(ErrorCode::InvalidEmail)
            };
        }
        let domain = normalized_domain(domain).ok_or(ErrorCode::InvalidEmail)?;
        let mut address = String::with_capacity(local.len() + 1 + domain.len());
        address.push_str(local);
        address.push('@');
        address.push_str(&domain);
        Ok(Self(address))
    }

    /// An address read back from storage: `EmailAddress::parse(&value)`, without its
    /// allocations when `value` is already in the normalized form that `parse` returns
    /// (as everything stored through `parse` is). Anything else, corrupt or not, goes
    /// through `parse` itself, so the result is always the same as `parse`'s.
    ///
    /// # Errors
    /// As `parse`.
    pub fn from_stored(value: String) -> Result<Self, ErrorCode> {
        if is_normalized(&value) {
            Ok(Self(value))
        } else {
            Self::parse(&value)
        }
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

/// The domain lower-cased, when both it and its lower-cased form are valid domains of
/// the same number of characters and lower-casing the result changes nothing more, so
/// that the stored form validates again as itself.
///
/// Storage reads every stored address through [`EmailAddress::parse`], so the common
/// case, an ASCII domain, is checked once: lower-casing ASCII keeps each character a
/// letter, digit, dash or dot in its place, so the result is as valid, as long and stable.
fn normalized_domain(domain: &str) -> Option<String> {
    if !is_valid_domain(domain) {
        return None;
    }
    if domain.is_ascii() {
        return Some(domain.to_ascii_lowercase());
    }
    let lower = domain.to_lowercase();
    let stable = lower.chars().count() == domain.chars().count()
        && lower.to_lowercase() == lower
        && is_valid_domain(&lower);
    stable.then_some(lower)
}

/// Whether `value` is an address that `EmailAddress::parse` returns unchanged, checked
/// without allocating: no surrounding white space, at most `MAX_LENGTH` bytes (so at most
/// as many characters), a valid local part and a valid ASCII domain already lower-cased.
/// `false` says only that the quick check cannot tell (a non-ASCII domain, for one).
fn is_normalized(value: &str) -> bool {
    if value.is_empty() || value.len() > MAX_LENGTH || trimmed(value).len() != value.len() {
        return false;
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    domain
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
        && is_valid_local_part(local)
        && is_valid_domain(domain)
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
    // At least one label before the top-level one.
    let Some((rest, tld)) = domain.rsplit_once('.') else {
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
    rest.split('.').all(is_label)
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

    #[test]
    fn a_domain_that_lower_casing_lengthens_is_refused() {
        // `İ` (U+0130) lower-cases to `i` + U+0307, a combining mark no domain may hold.
        for bad in [
            "ops@\u{130}nc.com",
            "ops@INC.\u{130}O",
            "ops@x\u{130}.example.com",
        ] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(ErrorCode::InvalidEmail),
                "{bad}"
            );
        }
    }

    #[test]
    fn internationalized_domains_keep_their_lower_cased_letters() {
        let address = EmailAddress::parse("ops@B\u{dc}CHER.de").expect("valid");
        let kelvin = EmailAddress::parse("ops@\u{212a}elvin.com").expect("valid");

        assert_eq!(address.as_str(), "ops@b\u{fc}cher.de");
        assert_eq!(EmailAddress::parse(address.as_str()), Ok(address.clone()));
        assert_eq!(kelvin.as_str(), "ops@kelvin.com");
    }

    #[test]
    fn an_address_read_from_storage_is_kept_when_normalized_and_parsed_otherwise() {
        let long = format!("{}@example.com", "a".repeat(309));
        for stored in [
            "child@example.com",
            "John.Doe@Example.COM",
            " a@b.co",
            "ops@B\u{dc}CHER.de",
            "ops@b\u{fc}cher.de",
            "user@LOCALHOST",
            "user@localhost",
            "user@example..com",
            "user@.example.com",
            "user@example.com-",
            "@example.com",
            "",
            "a\0@example.com",
            long.as_str(),
            &long[1..],
        ] {
            assert_eq!(
                EmailAddress::from_stored(stored.to_owned()),
                EmailAddress::parse(stored),
                "{stored:?}"
            );
        }
    }

    #[test]
    fn a_nul_or_a_control_character_is_no_address() {
        for bad in [
            "a\0@example.com",
            "a@exa\0mple.com",
            "a@example.com\0",
            "a\u{1}@b.co",
        ] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(ErrorCode::InvalidEmail),
                "{bad:?}"
            );
        }
    }

    /// Characters whose case mappings are unusual: more characters, final sigma, signs
    /// that lower-case to ASCII, title case, combining marks.
    const TRICKY: &[char] = &[
        '\u{130}', '\u{131}', '\u{212a}', '\u{212b}', '\u{3a3}', '\u{3c2}', '\u{1e9e}', '\u{df}',
        '\u{1c5}', '\u{307}', '\u{345}', '\u{fb00}', '\u{2160}', '\u{24b6}', 'A', 'z', '0', '-',
        '.', '@', ' ', '\0',
    ];

    fn tricky_text(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                3 => proptest::sample::select(TRICKY),
                1 => any::<char>(),
            ],
            0..max,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    /// The domain rules as first written: labels collected, every domain lower-cased and
    /// checked again.
    fn reference_normalized_domain(domain: &str) -> Option<String> {
        fn valid(domain: &str) -> bool {
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
        if !valid(domain) {
            return None;
        }
        let lower = domain.to_lowercase();
        let stable = lower.chars().count() == domain.chars().count()
            && lower.to_lowercase() == lower
            && valid(&lower);
        stable.then_some(lower)
    }

    #[test]
    fn edge_domains_normalize_as_the_reference_does() {
        for domain in [
            "",
            ".",
            "..",
            "a.",
            ".co",
            "a..co",
            "a.co",
            "A.CO",
            "localhost",
            "LocalHost",
            "localhost.",
            "a.b.c.DE",
            "-a.co",
            "a-.co",
            "a.co-",
            "a.-co",
            "a.c",
            "1.23",
            "B\u{dc}CHER.de",
            "\u{130}nc.com",
            "\u{212a}elvin.com",
        ] {
            assert_eq!(
                normalized_domain(domain),
                reference_normalized_domain(domain),
                "{domain:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn domains_normalize_as_the_reference_does(
            domain in prop_oneof![
                "[A-Za-z0-9.-]{0,30}",
                "([A-Za-z0-9-]{0,8}\\.){0,3}[A-Za-z0-9-]{0,8}",
                tricky_text(20),
            ],
        ) {
            prop_assert_eq!(normalized_domain(&domain), reference_normalized_domain(&domain));
        }

        #[test]
        fn parsing_any_text_never_panics_and_what_is_accepted_parses_back_as_itself(
            value in any::<String>(),
        ) {
            if let Ok(address) = EmailAddress::parse(&value) {
                prop_assert_eq!(EmailAddress::parse(address.as_str()), Ok(address.clone()));
            }
        }

        #[test]
        fn an_accepted_address_has_a_stable_lower_case_domain_and_reads_back(
            local in "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,12}",
            domain in tricky_text(24),
            tld in tricky_text(6),
        ) {
            let raw = format!("{local}@{domain}.{tld}");

            if let Ok(address) = EmailAddress::parse(&raw) {
                let stored = address.as_str();
                prop_assert_eq!(EmailAddress::parse(stored), Ok(address.clone()));
                prop_assert_eq!(address.domain().to_lowercase(), address.domain());
                prop_assert!(!stored.contains('\0'));
                prop_assert!(stored.chars().count() <= MAX_LENGTH);
                prop_assert_eq!(
                    address.domain().chars().count(),
                    raw.rsplit_once('@').map_or(0, |(_, d)| d.trim().chars().count())
                );
            }
        }

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
        fn an_address_read_from_storage_is_what_parsing_it_gives(
            value in prop_oneof![any::<String>(), tricky_text(40)],
            local in "[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{0,12}",
            domain in prop_oneof![tricky_text(24), "[a-z0-9.-]{0,20}", "[A-Za-z0-9.-]{0,20}"],
            tld in prop_oneof![tricky_text(6), "[a-z-]{0,5}"],
            padding in prop_oneof![Just(""), Just(" "), Just("\t"), Just("\u{a0}")],
        ) {
            for raw in [
                value,
                format!("{local}@{domain}.{tld}"),
                format!("{padding}{local}@{domain}.{tld}"),
                format!("{local}@{domain}.{tld}{padding}"),
            ] {
                prop_assert_eq!(EmailAddress::from_stored(raw.clone()), EmailAddress::parse(&raw));
            }
        }

        #[test]
        fn anything_without_an_at_sign_is_refused(value in "[^@]{1,40}") {
            prop_assert!(EmailAddress::parse(&value).is_err());
        }
    }
}
