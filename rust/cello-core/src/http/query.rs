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

/// Why a body of this `Content-Type` is not read as a form, if it is not:
/// forms are URL-encoded or multipart. No content type at all is read as a
/// URL-encoded form: browsers never omit it, and hand-written clients that
/// do mean the simple case.
pub fn form_refusal(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        || essence.eq_ignore_ascii_case("multipart/form-data")
    {
        None
    } else {
        Some(format!(
            "request.form() reads application/x-www-form-urlencoded or multipart/form-data bodies, not {essence:?}"
        ))
    }
}

// The typed parameter parsers: each says, on failure, what it expected.

pub fn parse_int(value: &str) -> Result<i64, &'static str> {
    value.parse().map_err(|_| "an integer")
}

/// Finite numbers only: `nan` and `inf` would pass `f64::from_str`.
pub fn parse_float(value: &str) -> Result<f64, &'static str> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("a finite number"),
    }
}

pub fn parse_bool(value: &str) -> Result<bool, &'static str> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err("a boolean (true/false, 1/0, yes/no, on/off)"),
    }
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

    #[test]
    fn typed_parsers_refuse_what_they_cannot_read() {
        assert_eq!(parse_int("-42"), Ok(-42));
        assert_eq!(parse_int("4.2"), Err("an integer"));
        assert_eq!(parse_int("99999999999999999999"), Err("an integer"));
        assert_eq!(parse_float("2.5e3"), Ok(2500.0));
        for bad in ["nan", "inf", "-infinity", "1e999", "x"] {
            assert_eq!(parse_float(bad), Err("a finite number"), "{bad}");
        }
        assert_eq!(parse_bool("YES"), Ok(true));
        assert_eq!(parse_bool(""), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn forms_are_urlencoded_bodies_only() {
        assert_eq!(
            form_refusal("application/x-www-form-urlencoded; charset=utf-8"),
            None
        );
        assert_eq!(form_refusal("Application/X-WWW-Form-Urlencoded"), None);
        assert_eq!(form_refusal("multipart/form-data; boundary=x"), None);
        assert!(form_refusal("application/json")
            .unwrap()
            .ends_with("not \"application/json\""));
    }
}
