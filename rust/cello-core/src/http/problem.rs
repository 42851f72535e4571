//! RFC 7807 problem details: the body of every framework-generated error.

use crate::json::{write_str, write_u64};

/// The media type of a problem body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// A framework-generated error, rendered as `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub title: String,
    pub detail: Option<String>,
    /// A `detail` that is not a string (a list of validation errors), as
    /// serialised JSON; written instead of `detail` when set.
    pub detail_json: Option<Box<[u8]>>,
    pub instance: Option<String>,
    /// Extension members, written after the standard ones in this order.
    pub extensions: Vec<(String, Extension)>,
}

/// The value of a problem's extension member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    Text(String),
    /// A count of something (`retry_after` seconds), written as a JSON number.
    Number(u64),
}

impl Problem {
    /// A problem whose title is the status code's reason phrase.
    pub fn new(status: u16) -> Self {
        let title = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
            .to_owned();
        Problem {
            status,
            title,
            detail: None,
            detail_json: None,
            instance: None,
            extensions: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets `detail` to a JSON value (`json` must be one valid JSON value).
    pub fn with_json_detail(mut self, json: Vec<u8>) -> Self {
        self.detail_json = Some(json.into_boxed_slice());
        self
    }

    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Adds the extension member `key` with a numeric value.
    pub fn with_number(mut self, key: impl Into<String>, value: u64) -> Self {
        self.extensions.push((key.into(), Extension::Number(value)));
        self
    }

    /// Serialises the problem; key order is fixed so every door emits the same bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(b"{\"type\":\"about:blank\",\"title\":");
        write_str(&mut out, &self.title);
        out.extend_from_slice(b",\"status\":");
        write_u64(&mut out, u64::from(self.status));
        if let Some(json) = &self.detail_json {
            out.extend_from_slice(b",\"detail\":");
            out.extend_from_slice(json);
        } else if let Some(detail) = &self.detail {
            out.extend_from_slice(b",\"detail\":");
            write_str(&mut out, detail);
        }
        if let Some(instance) = &self.instance {
            out.extend_from_slice(b",\"instance\":");
            write_str(&mut out, instance);
        }
        for (key, value) in &self.extensions {
            out.push(b',');
            write_str(&mut out, key);
            out.push(b':');
            match value {
                Extension::Text(text) => write_str(&mut out, text),
                Extension::Number(number) => write_u64(&mut out, *number),
            }
        }
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_standard_members_in_order() {
        let p = Problem::new(404)
            .with_detail("No route for GET /x")
            .with_instance("/x");
        assert_eq!(
            String::from_utf8(p.to_json()).unwrap(),
            r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"No route for GET /x","instance":"/x"}"#
        );
    }

    #[test]
    fn numeric_extensions_are_json_numbers_after_the_standard_members() {
        let p = Problem::new(429)
            .with_detail("slow down")
            .with_number("retry_after", 7);
        assert_eq!(
            String::from_utf8(p.to_json()).unwrap(),
            r#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"slow down","retry_after":7}"#
        );
    }

    #[test]
    fn a_json_detail_is_written_as_is_in_the_detail_position() {
        let p = Problem::new(422)
            .with_detail("ignored")
            .with_json_detail(br#"[{"loc":["body"]}]"#.to_vec())
            .with_instance("/x");
        assert_eq!(
            String::from_utf8(p.to_json()).unwrap(),
            r#"{"type":"about:blank","title":"Unprocessable Entity","status":422,"detail":[{"loc":["body"]}],"instance":"/x"}"#
        );
    }

    #[test]
    fn unknown_status_still_has_a_title() {
        let p = Problem::new(599);
        assert!(String::from_utf8(p.to_json())
            .unwrap()
            .contains("\"title\":\"Error\""));
    }
}
