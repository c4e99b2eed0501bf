//! Time values. The domain never reads the clock: `now` is always passed in.

/// An instant, in UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// A length of time.
pub type Duration = chrono::TimeDelta;

/// The longest duration a setting or a limit's window takes: a year. Anything longer is
/// refused, so that adding it to (or subtracting it from) the current time can never
/// overflow (CONTRACT §9).
pub const MAX_DURATION_DAYS: i64 = 365;

/// Why a duration such as `12h` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDuration {
    /// Digits only, or nothing at all.
    #[error("`{0}` has no unit: use s, m, h or d (e.g. 12h)")]
    NoUnit(String),
    /// No digits before the unit, or too many.
    #[error("`{0}` is not a duration such as 90s, 30m, 12h or 7d")]
    NotANumber(String),
    /// Zero.
    #[error("`{0}` must be longer than zero")]
    NotPositive(String),
    /// A unit other than `s`, `m`, `h` or `d`.
    #[error("`{0}` has an unknown unit: use s, m, h or d")]
    UnknownUnit(String),
    /// More than [`MAX_DURATION_DAYS`] days.
    #[error("`{0}` is too long: at most {MAX_DURATION_DAYS}d")]
    TooLong(String),
}

/// Parses the one duration grammar of the service: a positive whole number of seconds,
/// minutes, hours or days (`90s`, `30m`, `12h`, `7d`), at most [`MAX_DURATION_DAYS`]
/// days. Surrounding spaces are ignored.
///
/// # Errors
/// [`InvalidDuration`] says what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| InvalidDuration::NoUnit(text.to_owned()))?;
    let (number, unit) = text.split_at(split);
    let too_long = || InvalidDuration::TooLong(text.to_owned());
    let number: i64 = match number.parse() {
        Ok(number) => number,
        // Only digits were taken: a number that does not fit is too long.
        Err(_) if !number.is_empty() => return Err(too_long()),
        Err(_) => return Err(InvalidDuration::NotANumber(text.to_owned())),
    };
    if number == 0 {
        return Err(InvalidDuration::NotPositive(text.to_owned()));
    }
    let duration = match unit {
        "s" => Duration::try_seconds(number),
        "m" => Duration::try_minutes(number),
        "h" => Duration::try_hours(number),
        "d" => Duration::try_days(number),
        _ => return Err(InvalidDuration::UnknownUnit(text.to_owned())),
    };
    duration
        .filter(|duration| *duration <= Duration::days(MAX_DURATION_DAYS))
        .ok_or_else(too_long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_minutes_hours_and_days() {
        assert_eq!(parse_duration("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::minutes(30)));
        assert_eq!(parse_duration(" 12h "), Ok(Duration::hours(12)));
        assert_eq!(parse_duration("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_duration("365d"), Ok(Duration::days(365)));
        assert_eq!(parse_duration("8760h"), Ok(Duration::days(365)));
    }

    #[test]
    fn each_mistake_has_its_reason() {
        assert_eq!(
            parse_duration("12"),
            Err(InvalidDuration::NoUnit("12".to_owned()))
        );
        assert_eq!(
            parse_duration(""),
            Err(InvalidDuration::NoUnit(String::new()))
        );
        for not_a_number in ["h", "-1h", "+1h", "1.5h"] {
            assert!(
                matches!(
                    parse_duration(not_a_number),
                    Err(InvalidDuration::NotANumber(_) | InvalidDuration::UnknownUnit(_))
                ),
                "{not_a_number}"
            );
        }
        assert_eq!(
            parse_duration("0s"),
            Err(InvalidDuration::NotPositive("0s".to_owned()))
        );
        assert_eq!(
            parse_duration("12w"),
            Err(InvalidDuration::UnknownUnit("12w".to_owned()))
        );
        for long in ["366d", "8761h", "1000000000d", "99999999999999999999s"] {
            assert_eq!(
                parse_duration(long),
                Err(InvalidDuration::TooLong(long.to_owned())),
                "{long}"
            );
        }
    }
}
