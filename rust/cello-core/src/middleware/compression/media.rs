//! Which media types are worth compressing: text and the structured text
//! formats. Images, audio, video, archives and most fonts are compressed
//! already, and a second pass only costs CPU.

/// Whether a body of this `Content-Type` is worth compressing.
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    if kind.eq_ignore_ascii_case("text") {
        return true;
    }
    // `application/problem+json`, `application/atom+xml`, `image/svg+xml`...
    if subtype.ends_with("+json") || subtype.ends_with("+xml") || subtype.ends_with("+yaml") {
        return true;
    }
    if kind.eq_ignore_ascii_case("application") {
        return matches!(
            subtype.as_str(),
            "json"
                | "javascript"
                | "ecmascript"
                | "x-javascript"
                | "xml"
                | "wasm"
                | "x-ndjson"
                | "ndjson"
                | "jsonl"
                | "yaml"
                | "x-yaml"
                | "toml"
                | "graphql"
                | "x-www-form-urlencoded"
                | "rtf"
                | "vnd.ms-fontobject"
        );
    }
    // TrueType and OpenType fonts are uncompressed tables; WOFF and WOFF2
    // are compressed already.
    kind.eq_ignore_ascii_case("font") && matches!(subtype.as_str(), "ttf" | "otf" | "sfnt")
}

#[cfg(test)]
mod tests {
    use super::compressible;

    #[test]
    fn text_and_structured_text_compress() {
        for t in [
            "text/html",
            "text/html; charset=utf-8",
            "TEXT/PLAIN",
            "text/event-stream",
            "text/css",
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
            "application/ld+json",
            "application/javascript",
            "application/xml",
            "application/atom+xml",
            "image/svg+xml",
            "application/wasm",
            "application/x-ndjson",
            "font/ttf",
        ] {
            assert!(compressible(t), "{t}");
        }
    }

    #[test]
    fn dense_or_unknown_types_do_not() {
        for t in [
            "image/png",
            "image/jpeg",
            "image/webp",
            "audio/mpeg",
            "video/mp4",
            "application/zip",
            "application/gzip",
            "application/x-7z-compressed",
            "application/octet-stream",
            "application/pdf",
            "font/woff",
            "font/woff2",
            "application/vnd.api+zip",
            "",
            "json",
            "text",
        ] {
            assert!(!compressible(t), "{t}");
        }
    }
}
