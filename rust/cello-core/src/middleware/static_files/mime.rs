//! A file's media type, from its name, and the encodings a client takes.

use std::path::Path;

/// The `Content-Type` for `path`: guessed from the extension (unknown ones
/// are `application/octet-stream`), with `charset=utf-8` for text, which
/// browsers would otherwise read in a legacy encoding.
pub fn content_type(path: &Path) -> String {
    let guessed = mime_guess::from_path(path).first_raw();
    let essence = guessed.unwrap_or("application/octet-stream");
    if is_text(essence) {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_owned()
    }
}

fn is_text(essence: &str) -> bool {
    essence.starts_with("text/")
        || essence == "application/javascript"
        || essence == "application/json"
        || essence.ends_with("+json")
}

/// A stored, precompressed version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    /// The suffix of the stored file (`app.js.br`).
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gz",
        }
    }

    /// The `Content-Encoding` it is sent with.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// The precompressed encodings `accept_encoding` takes, most preferred
/// first (by q-value; Brotli first on a tie, as it is the smaller). A coding
/// refused with `q=0`, or with a q-value that does not parse, is left out;
/// `*` stands for the codings not named.
pub fn accepted(accept_encoding: &str) -> Vec<Encoding> {
    let (mut br, mut gzip, mut any) = (None, None, None);
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut q = Some(1.0_f32);
        for param in parts {
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    q = qvalue(value.trim());
                }
            }
        }
        let q = q.unwrap_or(0.0);
        if coding.eq_ignore_ascii_case("br") {
            br = Some(q);
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding == "*" {
            any = Some(q);
        }
    }
    let mut ranked: Vec<(Encoding, f32)> = [(Encoding::Brotli, br), (Encoding::Gzip, gzip)]
        .into_iter()
        .filter_map(|(encoding, q)| Some((encoding, q.or(any)?)))
        .filter(|&(_, q)| q > 0.0)
        .collect();
    // A stable sort keeps Brotli ahead of gzip when they tie.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.into_iter().map(|(encoding, _)| encoding).collect()
}

/// A q-value as RFC 9110 §12.4.2 writes it: 0 to 1, three decimals at most.
fn qvalue(text: &str) -> Option<f32> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let well_formed = matches!(whole, "0" | "1")
        && fraction.len() <= 3
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && (whole == "0" || fraction.bytes().all(|b| b == b'0'));
    well_formed.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    #[test]
    fn types_come_from_the_extension_with_a_charset_for_text() {
        let ct = |name: &str| content_type(Path::new(name));
        assert_eq!(ct("a/index.html"), "text/html; charset=utf-8");
        assert_eq!(ct("site.css"), "text/css; charset=utf-8");
        assert_eq!(ct("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(ct("mod.mjs"), "application/javascript; charset=utf-8");
        assert_eq!(ct("data.json"), "application/json; charset=utf-8");
        assert_eq!(
            ct("site.webmanifest"),
            "application/manifest+json; charset=utf-8"
        );
        assert_eq!(ct("logo.png"), "image/png");
        assert_eq!(ct("logo.svg"), "image/svg+xml");
        assert_eq!(ct("LOGO.PNG"), "image/png");
        assert_eq!(ct("blob.unknownext"), "application/octet-stream");
        assert_eq!(ct("Makefile"), "application/octet-stream");
    }

    #[test]
    fn encodings_are_ranked_by_q_value() {
        assert_eq!(accepted("gzip, deflate, br"), [Brotli, Gzip]);
        assert_eq!(accepted("gzip"), [Gzip]);
        assert_eq!(accepted("br;q=0.5, gzip;q=0.8"), [Gzip, Brotli]);
        assert_eq!(accepted("br;q=0, gzip"), [Gzip]);
        assert_eq!(accepted("BR;Q=1.0"), [Brotli]);
        assert_eq!(accepted("x-gzip"), [Gzip]);
        assert_eq!(accepted("*"), [Brotli, Gzip]);
        assert_eq!(accepted("*;q=0.1, gzip;q=0.5"), [Gzip, Brotli]);
        assert_eq!(accepted("*;q=0, gzip"), [Gzip]);
        assert!(accepted("identity").is_empty());
        assert!(accepted("").is_empty());
        assert!(accepted("deflate").is_empty());
    }

    #[test]
    fn malformed_q_values_refuse_their_coding() {
        for header in [
            "br;q=2",
            "br;q=-1",
            "br;q=0.5.5",
            "br;q=abc",
            "br;q=1.5",
            "br;q=0.1234",
        ] {
            assert!(accepted(header).is_empty(), "{header}");
        }
        assert_eq!(accepted("br;q=0.001"), [Brotli]);
    }
}
