//! Language negotiation from `Accept-Language`, as Django's locale middleware does.

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_LANGUAGE;

use crate::catalog::Language;

/// The language of a request: the supported language with the highest quality in
/// `Accept-Language` (ties keep the header's order), English when none is supported.
#[must_use]
pub fn language_of(headers: &HeaderMap) -> Language {
    headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .map_or(Language::English, negotiate)
}

/// The longest `Accept-Language` read, as Django's `ACCEPT_LANGUAGE_HEADER_MAX_LENGTH`.
const MAX_HEADER_LENGTH: usize = 500;

/// Picks a language from the text of an `Accept-Language` header. A header longer than
/// 500 bytes is cut at its last comma within them, as Django does, so that a huge header
/// costs no more than a normal one.
#[must_use]
pub fn negotiate(header: &str) -> Language {
    let header = if header.len() > MAX_HEADER_LENGTH {
        let mut end = MAX_HEADER_LENGTH;
        while !header.is_char_boundary(end) {
            end -= 1;
        }
        let head = &header[..end];
        head.rsplit_once(',').map_or(head, |(kept, _)| kept)
    } else {
        header
    };
    // The highest quality; of equal ones the first, which `min_by` keeps.
    header
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let tag = parts.next()?.trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|param| {
                    let (name, value) = param.split_once('=')?;
                    (name.trim() == "q").then(|| value.trim().parse::<f32>().ok())?
                })
                .unwrap_or(1.0);
            if quality <= 0.0 {
                return None;
            }
            let language = match tag.split('-').next().unwrap_or_default() {
                "fr" => Language::French,
                "en" | "*" => Language::English,
                _ => return None,
            };
            Some((quality, language))
        })
        .min_by(|(one, _), (other, _)| other.total_cmp(one))
        .map_or(Language::English, |(_, language)| language)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_tags_with_or_without_a_region_choose_french() {
        for header in ["fr", "fr-FR", "fr-CA;q=0.9,en;q=0.8", "FR-be"] {
            assert_eq!(negotiate(header), Language::French, "{header}");
        }
    }

    #[test]
    fn anything_else_chooses_english() {
        for header in [
            "",
            "en",
            "en-US,fr;q=0.5",
            "*",
            "de",
            "fr;q=0",
            "garbage;;;",
        ] {
            assert_eq!(negotiate(header), Language::English, "{header}");
        }
    }

    #[test]
    fn the_highest_quality_wins_over_the_order() {
        assert_eq!(negotiate("en;q=0.4, fr;q=0.9"), Language::French);
    }

    #[test]
    fn an_unsupported_first_choice_falls_back_to_the_next_supported_one() {
        assert_eq!(negotiate("de-DE, fr;q=0.7, en;q=0.5"), Language::French);
    }

    #[test]
    fn a_header_past_500_bytes_is_cut_at_its_last_comma_within_them() {
        let padding = "de;q=0.1,".repeat(60);
        let late_french = format!("{padding}fr");
        let early_french = format!("fr,{padding}");

        assert_eq!(negotiate(&late_french), Language::English);
        assert_eq!(negotiate(&early_french), Language::French);
        assert_eq!(negotiate(&"x".repeat(3000)), Language::English);
    }

    proptest::proptest! {
        #[test]
        fn any_header_text_negotiates_without_panicking(header in proptest::prelude::any::<String>()) {
            let _ = negotiate(&header);
        }
    }

    #[test]
    fn no_header_means_english() {
        assert_eq!(language_of(&HeaderMap::new()), Language::English);
    }
}
