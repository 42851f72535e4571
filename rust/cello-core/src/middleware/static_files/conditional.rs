//! Validators of a file (`ETag`, `Last-Modified`) and the conditional
//! requests that use them (RFC 9110 §13): `If-None-Match`,
//! `If-Modified-Since` and `If-Range`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What identifies one version of a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// A strong tag, quotes included.
    pub etag: String,
    /// The modification time, whole seconds (what an HTTP date holds).
    pub modified: SystemTime,
}

impl Validators {
    /// From the size and modification time, which change whenever the
    /// file's bytes are replaced. `variant` tells the encodings of one file
    /// apart (`"br"`), since their bytes differ.
    pub fn new(len: u64, modified: SystemTime, variant: &str) -> Self {
        let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        let etag = if variant.is_empty() {
            format!("\"{len:x}-{:x}\"", since.as_nanos())
        } else {
            format!("\"{len:x}-{:x}-{variant}\"", since.as_nanos())
        };
        Validators {
            etag,
            modified: UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        }
    }

    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }
}

/// The entity tags of an `If-None-Match` or `If-Match` list, `W/` kept;
/// `None` when the list is malformed, which then matches nothing.
fn entity_tags(list: &str) -> Option<Vec<&str>> {
    let mut tags = Vec::new();
    let mut rest = list.trim_start_matches([' ', '\t', ',']);
    while !rest.is_empty() {
        let start = rest;
        let unweak = rest.strip_prefix("W/").unwrap_or(rest);
        let opaque = unweak.strip_prefix('"')?;
        let close = opaque.find('"')?;
        let taken = start.len() - opaque.len() + close + 1;
        tags.push(&start[..taken]);
        rest = start[taken..].trim_start_matches([' ', '\t']);
        if !rest.is_empty() {
            rest = rest.strip_prefix(',')?.trim_start_matches([' ', '\t', ',']);
        }
    }
    Some(tags)
}

fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// `If-None-Match` against the file's tag (weak comparison: `W/"x"`
/// matches `"x"`); `*` matches any file that exists. `etag` is `None` when
/// tags are not sent, and then only `*` matches.
pub fn none_match(header: &str, etag: Option<&str>) -> bool {
    if header.trim() == "*" {
        return true;
    }
    let Some(etag) = etag else {
        return false;
    };
    entity_tags(header).is_some_and(|tags| tags.iter().any(|t| opaque(t) == opaque(etag)))
}

/// `If-Modified-Since`: true when the file has not changed since `header`.
/// A date that does not parse, or that lies in the future (a clock the
/// server cannot trust), is ignored.
pub fn not_modified_since(header: &str, modified: SystemTime, now: SystemTime) -> bool {
    match httpdate::parse_http_date(header.trim()) {
        Ok(since) if since <= now => modified <= since,
        _ => false,
    }
}

/// `If-Range`: whether the range may be served. The tag must match
/// strongly (a weak tag never does); a date must be the file's
/// `Last-Modified` exactly.
pub fn range_still_fresh(header: &str, validators: &Validators, etag_sent: bool) -> bool {
    let header = header.trim();
    if header.starts_with('"') || header.starts_with("W/") {
        return etag_sent && header == validators.etag;
    }
    httpdate::parse_http_date(header).is_ok_and(|date| date == validators.modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn tags_change_with_size_time_and_variant() {
        let base = Validators::new(10, at(1_000), "");
        assert_eq!(base.etag, format!("\"a-{:x}\"", 1_000_000_000_000_u64));
        assert_ne!(Validators::new(11, at(1_000), "").etag, base.etag);
        assert_ne!(Validators::new(10, at(1_001), "").etag, base.etag);
        assert_ne!(Validators::new(10, at(1_000), "br").etag, base.etag);
        assert!(Validators::new(10, at(1_000), "gz").etag.ends_with("-gz\""));
    }

    #[test]
    fn last_modified_is_an_imf_fixdate_in_whole_seconds() {
        let v = Validators::new(1, at(784_111_777) + Duration::from_millis(999), "");
        assert_eq!(v.last_modified(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(v.modified, at(784_111_777));
    }

    #[test]
    fn if_none_match_compares_weakly_through_lists() {
        let tag = "\"abc\"";
        for header in [
            "\"abc\"",
            "W/\"abc\"",
            "\"x\", \"abc\"",
            "\"x\",W/\"abc\" ",
            " , \"abc\"",
            "*",
            " * ",
        ] {
            assert!(none_match(header, Some(tag)), "{header}");
        }
        for header in [
            "\"abd\"",
            "abc",
            "\"abc",
            "\"x\" \"abc\"",
            "W/abc",
            "",
            "\"a,b\"",
        ] {
            assert!(!none_match(header, Some(tag)), "{header}");
        }
        assert!(none_match("\"a,b\"", Some("\"a,b\"")));
        assert!(none_match("*", None));
        assert!(!none_match("\"abc\"", None));
    }

    #[test]
    fn if_modified_since_ignores_bad_and_future_dates() {
        let now = at(2_000_000_000);
        let modified = at(784_111_777);
        let same = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert!(not_modified_since(same, modified, now));
        assert!(not_modified_since(
            "Sunday, 06-Nov-94 08:49:37 GMT",
            modified,
            now
        ));
        assert!(not_modified_since(
            "Sun Nov  6 08:49:37 1994",
            modified,
            now
        ));
        assert!(!not_modified_since(
            "Sun, 06 Nov 1994 08:49:36 GMT",
            modified,
            now
        ));
        assert!(!not_modified_since("yesterday", modified, now));
        assert!(!not_modified_since("", modified, now));
        assert!(!not_modified_since(same, modified, at(784_111_000)));
    }

    #[test]
    fn if_range_needs_a_strong_tag_or_the_exact_date() {
        let v = Validators::new(5, at(784_111_777), "");
        assert!(range_still_fresh(&v.etag, &v, true));
        assert!(!range_still_fresh(&v.etag, &v, false));
        assert!(!range_still_fresh(&format!("W/{}", v.etag), &v, true));
        assert!(!range_still_fresh("\"other\"", &v, true));
        assert!(range_still_fresh("Sun, 06 Nov 1994 08:49:37 GMT", &v, true));
        assert!(!range_still_fresh(
            "Sun, 06 Nov 1994 08:49:38 GMT",
            &v,
            true
        ));
        assert!(!range_still_fresh("garbage", &v, true));
    }
}
