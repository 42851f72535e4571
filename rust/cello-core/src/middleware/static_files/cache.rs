//! The `Cache-Control` value a configuration asks for: a duration
//! (`1h`) becomes `public, max-age=3600`; anything else is sent as given.

/// Why a cache setting cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct BadCache(pub String);

/// `setting` is a duration when it starts with a digit: a whole number of
/// seconds, or a number followed by `s`, `m`, `h`, `d`, `w` or `y` (365
/// days). Otherwise it is a literal header value (`no-cache`,
/// `public, max-age=60, immutable`), which must be visible ASCII.
pub fn cache_control(setting: &str) -> Result<String, BadCache> {
    let setting = setting.trim();
    if setting.is_empty() {
        return Err(BadCache("is empty".into()));
    }
    if setting.starts_with(|c: char| c.is_ascii_digit()) {
        return seconds(setting).map(|s| format!("public, max-age={s}"));
    }
    if !setting
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Err(BadCache(format!(
            "{setting:?} is neither a duration nor a header value"
        )));
    }
    Ok(setting.to_owned())
}

fn seconds(duration: &str) -> Result<u64, BadCache> {
    let digits = duration.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = duration.split_at(digits);
    let scale: u64 = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        other => {
            return Err(BadCache(format!(
                "{duration:?}: unknown unit {other:?} (use s, m, h, d, w or y)"
            )))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| BadCache(format!("{duration:?} is too long")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_a_public_max_age() {
        for (setting, seconds) in [
            ("30s", 30),
            ("10m", 600),
            ("1h", 3_600),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1y", 31_536_000),
            ("3600", 3_600),
            ("0", 0),
            (" 1h ", 3_600),
            ("5 m", 300),
        ] {
            assert_eq!(
                cache_control(setting),
                Ok(format!("public, max-age={seconds}")),
                "{setting}"
            );
        }
    }

    #[test]
    fn other_settings_are_literal_header_values() {
        assert_eq!(cache_control("no-cache").unwrap(), "no-cache");
        assert_eq!(
            cache_control("public, max-age=60, immutable").unwrap(),
            "public, max-age=60, immutable"
        );
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        assert!(cache_control("1x").unwrap_err().0.contains("unknown unit"));
        assert!(cache_control("10 minutes")
            .unwrap_err()
            .0
            .contains("unknown unit"));
        assert!(cache_control("1.5h")
            .unwrap_err()
            .0
            .contains("unknown unit"));
        assert!(cache_control("99999999999999999999s")
            .unwrap_err()
            .0
            .contains("too long"));
        assert!(cache_control("999999999999999999y")
            .unwrap_err()
            .0
            .contains("too long"));
        assert!(cache_control("").is_err());
        assert!(cache_control("no-cache\r\nx: y").is_err());
        assert!(cache_control("café").is_err());
    }
}
