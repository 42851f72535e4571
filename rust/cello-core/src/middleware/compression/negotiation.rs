//! Choosing a content coding from a request's `Accept-Encoding` (RFC 9110
//! §12.5.3): weights, `*`, `identity`, and a fixed server order on ties.

use std::fmt;

/// A content coding the server can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Zstd,
    Brotli,
    Gzip,
}

impl Coding {
    /// The token that names the coding in `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The coding a request token names (`x-gzip` is gzip, RFC 9110 §8.4.1.3).
    pub fn from_token(token: &str) -> Option<Coding> {
        if token.eq_ignore_ascii_case("zstd") {
            Some(Coding::Zstd)
        } else if token.eq_ignore_ascii_case("br") {
            Some(Coding::Brotli)
        } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Some(Coding::Gzip)
        } else {
            None
        }
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// The server's order when the client weighs several codings equally, as
/// browsers do (`gzip, deflate, br, zstd`): zstd first because at the levels
/// used here it compresses and decompresses fastest, with smaller output
/// than gzip; brotli next, the smallest output for more CPU than gzip; gzip
/// last, the one every client understands.
pub const SERVER_ORDER: [Coding; 3] = [Coding::Zstd, Coding::Brotli, Coding::Gzip];

/// A header longer than this is not parsed: no real client sends one, and
/// walking it for every request would cost the server, not the sender.
const MAX_HEADER: usize = 4096;

/// Weights are thousandths (`q=0.5` is 500), as the grammar allows three
/// decimals at most.
type Weight = u16;

/// What one request's `Accept-Encoding` said, boiled down to what the server
/// can choose between.
#[derive(Debug, Default, Clone, Copy)]
struct Weights {
    /// Each coding's weight when it was listed (by name or alias).
    listed: [Option<Weight>; 3],
    star: Option<Weight>,
    identity: Option<Weight>,
}

impl Weights {
    fn slot(coding: Coding) -> usize {
        match coding {
            Coding::Zstd => 0,
            Coding::Brotli => 1,
            Coding::Gzip => 2,
        }
    }

    /// The weight of `coding`: its own entry, else `*`'s, else refused. A
    /// coding listed twice (`gzip` and `x-gzip`) takes the higher weight.
    fn of(&self, coding: Coding) -> Weight {
        self.listed[Self::slot(coding)].or(self.star).unwrap_or(0)
    }

    fn record(&mut self, token: &str, weight: Weight) {
        let keep = |slot: &mut Option<Weight>| *slot = Some(slot.map_or(weight, |w| w.max(weight)));
        if token == "*" {
            keep(&mut self.star);
        } else if token.eq_ignore_ascii_case("identity") {
            keep(&mut self.identity);
        } else if let Some(coding) = Coding::from_token(token) {
            keep(&mut self.listed[Self::slot(coding)]);
        }
    }
}

/// The coding to send, from the request's `Accept-Encoding` values, among
/// the codings the server `offers` (in its order of preference for ties).
/// `None` means the body goes as it is: no header, nothing acceptable, or a
/// header too malformed to read (one that is not visible ASCII, or too long).
/// Single malformed entries (`gzip;q=abc`, `q=2`, `;`, `@@`) are skipped.
pub fn negotiate<'a>(
    values: impl IntoIterator<Item = &'a http::HeaderValue>,
    offers: &[Coding],
) -> Option<Coding> {
    let mut weights = Weights::default();
    let mut total = 0;
    let mut any = false;
    for value in values {
        any = true;
        total += value.len();
        if total > MAX_HEADER {
            return None;
        }
        let text = value.to_str().ok()?;
        for entry in text.split(',') {
            if let Some((token, weight)) = parse_entry(entry) {
                weights.record(token, weight);
            }
        }
    }
    if !any {
        return None;
    }
    // The first coding with the top weight wins, in the server's order.
    let (best, weight) = offers
        .iter()
        .map(|&coding| (coding, weights.of(coding)))
        .fold(
            None,
            |best: Option<(Coding, Weight)>, (coding, weight)| match best {
                Some((_, top)) if top >= weight => best,
                _ => Some((coding, weight)),
            },
        )?;
    // An explicit `identity` weighed above every coding keeps the body as
    // it is; on a tie the client has said both are fine, so compress.
    let identity_wins = weights.identity.is_some_and(|w| w > weight);
    (weight > 0 && !identity_wins).then_some(best)
}

/// One list element: `coding *( OWS ";" OWS param )`, with `q` the only
/// parameter that means anything. Returns None for an empty or malformed one.
fn parse_entry(entry: &str) -> Option<(&str, Weight)> {
    let mut parts = entry.split(';');
    let token = parts.next()?.trim_matches([' ', '\t']);
    if token.is_empty() || !token.bytes().all(is_tchar) {
        return None;
    }
    let mut weight = 1000;
    for param in parts {
        let (name, value) = param.split_once('=')?;
        let name = name.trim_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return None;
        }
        if name.eq_ignore_ascii_case("q") {
            weight = parse_qvalue(value.trim_matches([' ', '\t']))?;
        }
    }
    Some((token, weight))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn parse_qvalue(text: &str) -> Option<Weight> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |n: Weight, digit| n * 10 + Weight::from(digit - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// A token character (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(header: &str) -> Option<Coding> {
        let value = http::HeaderValue::from_str(header).unwrap();
        negotiate([&value], &SERVER_ORDER)
    }

    #[test]
    fn each_coding_alone_is_chosen() {
        assert_eq!(choose("gzip"), Some(Coding::Gzip));
        assert_eq!(choose("br"), Some(Coding::Brotli));
        assert_eq!(choose("zstd"), Some(Coding::Zstd));
        assert_eq!(choose("x-gzip"), Some(Coding::Gzip));
        assert_eq!(choose("GZip"), Some(Coding::Gzip));
        assert_eq!(choose("  BR  "), Some(Coding::Brotli));
    }

    #[test]
    fn the_highest_weight_wins() {
        assert_eq!(choose("gzip;q=1.0, br;q=0.5"), Some(Coding::Gzip));
        assert_eq!(
            choose("gzip;q=0.2, br;q=0.8, zstd;q=0.5"),
            Some(Coding::Brotli)
        );
        assert_eq!(choose("zstd;q=0.001, gzip;q=0.002"), Some(Coding::Gzip));
        assert_eq!(choose("gzip ; Q = 0.9 , br;q=0.91"), Some(Coding::Brotli));
    }

    #[test]
    fn ties_follow_the_server_order() {
        assert_eq!(choose("gzip, deflate, br, zstd"), Some(Coding::Zstd));
        assert_eq!(choose("gzip, br"), Some(Coding::Brotli));
        assert_eq!(choose("gzip;q=0.5, br;q=0.5"), Some(Coding::Brotli));
        let value = http::HeaderValue::from_static("gzip, br, zstd");
        assert_eq!(
            negotiate([&value], &[Coding::Gzip, Coding::Zstd]),
            Some(Coding::Gzip),
            "the offered order is the preference"
        );
        assert_eq!(negotiate([&value], &[Coding::Brotli]), Some(Coding::Brotli));
    }

    #[test]
    fn zero_weight_refuses_a_coding() {
        assert_eq!(choose("gzip;q=0"), None);
        assert_eq!(choose("gzip;q=0.000, br"), Some(Coding::Brotli));
        assert_eq!(choose("zstd;q=0, br;q=0, gzip;q=0.1"), Some(Coding::Gzip));
    }

    #[test]
    fn star_covers_the_codings_not_listed() {
        assert_eq!(choose("*"), Some(Coding::Zstd));
        assert_eq!(choose("*;q=0.5, zstd;q=0"), Some(Coding::Brotli));
        assert_eq!(choose("*;q=0, gzip"), Some(Coding::Gzip));
        assert_eq!(choose("*;q=0"), None);
        assert_eq!(choose("br;q=0.3, *;q=0.4"), Some(Coding::Zstd));
    }

    #[test]
    fn identity_competes_only_when_listed() {
        assert_eq!(choose("identity"), None);
        assert_eq!(choose("identity;q=0, gzip"), Some(Coding::Gzip));
        assert_eq!(choose("gzip;q=0.5, identity"), None);
        assert_eq!(choose("gzip, identity"), Some(Coding::Gzip));
        assert_eq!(choose("gzip;q=0.5"), Some(Coding::Gzip));
    }

    #[test]
    fn unknown_codings_and_no_header_give_identity() {
        assert_eq!(choose("deflate, compress"), None);
        assert_eq!(choose(""), None);
        assert_eq!(negotiate([], &SERVER_ORDER), None);
    }

    #[test]
    fn several_header_lines_are_one_list() {
        let a = http::HeaderValue::from_static("gzip;q=0.5");
        let b = http::HeaderValue::from_static("br;q=0.9");
        assert_eq!(negotiate([&a, &b], &SERVER_ORDER), Some(Coding::Brotli));
    }

    #[test]
    fn a_coding_listed_twice_takes_its_higher_weight() {
        assert_eq!(
            choose("gzip;q=0, x-gzip;q=0.5, br;q=0.4"),
            Some(Coding::Gzip)
        );
    }

    #[test]
    fn malformed_entries_are_skipped() {
        for (header, expected) in [
            ("gzip;q=abc", None),
            ("gzip;q=2", None),
            ("gzip;q=1.5", None),
            ("gzip;q=-1", None),
            ("gzip;q=0.1234", None),
            ("gzip;q=", None),
            ("gzip;q", None),
            ("gzip;=1", None),
            ("gzip;q=1.001", None),
            ("gzip;q=.5", None),
            (";q=1", None),
            (",,,", None),
            (";", None),
            ("g zip", None),
            ("@@@, br", Some(Coding::Brotli)),
            ("gzip;q=abc, br;q=0.1", Some(Coding::Brotli)),
            (", , gzip ,", Some(Coding::Gzip)),
            ("gzip;level=9", Some(Coding::Gzip)),
            ("gzip;q=1.000", Some(Coding::Gzip)),
            ("gzip;q=0.", None),
            ("gzip;q=1.", Some(Coding::Gzip)),
        ] {
            assert_eq!(choose(header), expected, "{header:?}");
        }
    }

    #[test]
    fn a_header_that_is_not_visible_ascii_or_too_long_is_ignored_whole() {
        let binary = http::HeaderValue::from_bytes(b"gzip, \xff").unwrap();
        assert_eq!(negotiate([&binary], &SERVER_ORDER), None);
        let long = format!("gzip, {}", "x;q=0.5, ".repeat(MAX_HEADER / 8));
        assert_eq!(choose(&long), None);
    }

    #[test]
    fn qvalues_parse_to_thousandths() {
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0.999"), Some(999));
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.00"), Some(1000));
        assert_eq!(parse_qvalue("01"), None);
        assert_eq!(parse_qvalue("0.5x"), None);
        assert_eq!(parse_qvalue(""), None);
    }
}
