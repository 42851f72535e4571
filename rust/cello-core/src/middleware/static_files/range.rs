//! The `Range` header (RFC 9110 §14.2) for one file: a single byte range
//! is served as a 206; anything else falls back to the whole file.

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranged {
    /// The whole file: no range, a malformed one, another unit, or several
    /// ranges (answering those would take a multipart body; the whole file
    /// is always a correct answer).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A well-formed range that lies outside the file (a 416).
    Unsatisfiable,
}

pub fn parse(header: &str, len: u64) -> Ranged {
    let header = header.trim();
    let Some((unit, set)) = header.split_once('=') else {
        return Ranged::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranged::Whole;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return Ranged::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    match (number(first), number(last)) {
        // `-n`: the last n bytes.
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start: len.saturating_sub(suffix),
                    end: len - 1,
                }
            }
        }
        // `a-`: from a to the end.
        (Some(start), None) if last.is_empty() => within(start, u64::MAX, len),
        (Some(start), Some(end)) if start <= end => within(start, end, len),
        _ => Ranged::Whole,
    }
}

fn within(start: u64, end: u64, len: u64) -> Ranged {
    if start >= len {
        Ranged::Unsatisfiable
    } else {
        Ranged::Part {
            start,
            end: end.min(len - 1),
        }
    }
}

/// Digits only (no sign, no space inside); a number too large for a u64 is
/// malformed, not clamped.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ranged::*;

    #[test]
    fn single_ranges_of_each_form() {
        assert_eq!(parse("bytes=0-4", 10), Part { start: 0, end: 4 });
        assert_eq!(parse("bytes=5-", 10), Part { start: 5, end: 9 });
        assert_eq!(parse("bytes=-3", 10), Part { start: 7, end: 9 });
        assert_eq!(parse("bytes=9-9", 10), Part { start: 9, end: 9 });
        assert_eq!(parse("Bytes = 2 - 3 ", 10), Part { start: 2, end: 3 });
        assert_eq!(parse("bytes=0-4,", 10), Part { start: 0, end: 4 });
    }

    #[test]
    fn ranges_past_the_end_are_clipped() {
        assert_eq!(parse("bytes=5-100", 10), Part { start: 5, end: 9 });
        assert_eq!(parse("bytes=-100", 10), Part { start: 0, end: 9 });
        assert_eq!(
            parse("bytes=0-18446744073709551615", 10),
            Part { start: 0, end: 9 }
        );
    }

    #[test]
    fn ranges_outside_the_file_are_unsatisfiable() {
        assert_eq!(parse("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse("bytes=-5", 0), Unsatisfiable);
    }

    #[test]
    fn malformed_or_multiple_ranges_give_the_whole_file() {
        for header in [
            "",
            "bytes",
            "bytes=",
            "bytes=abc",
            "bytes=-",
            "bytes=5-1",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=0x1-2",
            "bytes=1 0-20",
            "items=1-2",
            "bytes=0-1,3-4",
            "bytes=0-1, 100-200",
            "bytes=99999999999999999999-",
            "bytes=-99999999999999999999",
            "bytes=0-99999999999999999999",
            "bytes=１-2",
        ] {
            assert_eq!(parse(header, 10), Whole, "{header:?}");
        }
    }
}
