//! Query strings and URL-encoded forms: `a=1&a=2&b` into ordered pairs.

use percent_encoding::percent_decode;

/// Parses `application/x-www-form-urlencoded` data (also the query string).
///
/// `+` means space, percent escapes are decoded as UTF-8 (invalid sequences
/// become U+FFFD), a bare key has an empty value, empty segments are skipped,
/// and repeated keys are all kept in order.
pub fn parse_urlencoded(input: &[u8]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for segment in input.split(|&b| b == b'&') {
        if segment.is_empty() {
            continue;
        }
        let (key, value) = match segment.iter().position(|&b| b == b'=') {
            Some(i) => (&segment[..i], &segment[i + 1..]),
            None => (segment, &b""[..]),
        };
        pairs.push((decode_component(key), decode_component(value)));
    }
    pairs
}

/// Decodes one form component: `+` to space, then percent escapes.
pub fn decode_component(raw: &[u8]) -> String {
    if !raw.iter().any(|&b| b == b'+' || b == b'%') {
        return String::from_utf8_lossy(raw).into_owned();
    }
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).decode_utf8_lossy().into_owned()
}

/// Decodes a URL path: percent escapes only (`+` stays `+`).
pub fn decode_path(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_owned();
    }
    percent_decode(raw.as_bytes())
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn keeps_repeats_and_order() {
        assert_eq!(
            parse_urlencoded(b"a=1&b=2&a=3"),
            pairs(&[("a", "1"), ("b", "2"), ("a", "3")])
        );
    }

    #[test]
    fn decodes_plus_percent_and_unicode() {
        assert_eq!(
            parse_urlencoded(b"q=hello+world&u=%C3%A9t%C3%A9&p=%2B1"),
            pairs(&[("q", "hello world"), ("u", "été"), ("p", "+1")])
        );
    }

    #[test]
    fn bare_keys_empty_values_and_empty_segments() {
        assert_eq!(
            parse_urlencoded(b"flag&x=&&=v"),
            pairs(&[("flag", ""), ("x", ""), ("", "v")])
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        assert_eq!(parse_urlencoded(b"k=%FF"), pairs(&[("k", "\u{FFFD}")]));
    }

    #[test]
    fn path_decoding_leaves_plus() {
        assert_eq!(decode_path("/a+b/%C3%A9"), "/a+b/é");
    }
}
