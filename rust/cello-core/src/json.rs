//! JSON writing primitives whose output matches `orjson.dumps` byte for byte.
//!
//! The bindings crate walks Python objects and calls these; keeping the byte
//! formats here lets `cargo test` pin them without an interpreter.

/// For each byte: 0 = copy as-is, otherwise the character after the backslash
/// (`u` means a `\u00XX` escape).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string: quotes, backslash and control characters
/// escaped; everything else, including non-ASCII, copied verbatim.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let clean = clean_prefix(bytes);
    if clean == bytes.len() {
        // The common case, in one reservation and one copy.
        let n = bytes.len();
        out.reserve(n + 2);
        let start = out.len();
        // SAFETY: `n + 2` bytes after `start` were reserved above; all of
        // them are written before the length covers them.
        unsafe {
            let at = out.as_mut_ptr().add(start);
            at.write(b'"');
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.add(1), n);
            at.add(n + 1).write(b'"');
            out.set_len(start + n + 2);
        }
        return;
    }
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// True when none of the eight bytes of `w` needs an escape.
fn word_is_clean(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A high bit set where a byte of `x` is zero (exact for the first such
    // byte, which is all that matters here: any hit means "not clean").
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    // Control bytes (< 0x20; bytes >= 0x80 have the high bit and are
    // excluded by `!w`), quotes and backslashes.
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    control | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\'))) == 0
}

fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// How many leading bytes of `bytes` need no escape: all of them, or a
/// count of whole eight-byte words (the byte loop takes it from there).
fn clean_prefix(bytes: &[u8]) -> usize {
    let n = bytes.len();
    if n < 8 {
        // Padded with a byte that needs no escape, to test it as one word.
        let mut word = [b'a'; 8];
        word[..n].copy_from_slice(bytes);
        return if word_is_clean(u64::from_le_bytes(word)) {
            n
        } else {
            0
        };
    }
    let mut clean = 0;
    while clean + 8 <= n {
        if !word_is_clean(word_at(bytes, clean)) {
            return clean;
        }
        clean += 8;
    }
    // The tail, as the last eight bytes (overlapping checked ones).
    if clean < n && !word_is_clean(word_at(bytes, n - 8)) {
        return clean;
    }
    n
}

/// Appends a signed integer.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends an unsigned integer.
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a float the way orjson does: the shortest digits that round-trip,
/// plain notation for decimal exponents in `-5..16` (always with a fraction,
/// `1.0`), scientific otherwise (`1e+16`, `1.5e-7`); NaN and infinities as
/// `null`.
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let mut buf = ryu::Buffer::new();
    let (negative, digits, exp) = shortest_digits(buf.format_finite(v));
    if negative {
        out.push(b'-');
    }
    let n = digits.len() as i32;
    if (-5..16).contains(&exp) {
        if exp >= 0 {
            let int_len = (exp + 1) as usize;
            if digits.len() <= int_len {
                out.extend_from_slice(&digits);
                out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(&digits);
        }
    } else {
        out.push(digits[0]);
        if n > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        if exp >= 0 {
            out.push(b'+');
        }
        write_i64(out, exp as i64);
    }
}

/// Splits ryu's output into sign, significant digits (no leading or trailing
/// zeros, at least one digit) and the decimal exponent of the first digit.
fn shortest_digits(repr: &str) -> (bool, Vec<u8>, i32) {
    let (negative, rest) = match repr.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, repr),
    };
    let (mantissa, exp_part) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().unwrap_or(0)),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: Vec<u8> = Vec::with_capacity(int_part.len() + frac_part.len());
    digits.extend_from_slice(int_part.as_bytes());
    digits.extend_from_slice(frac_part.as_bytes());
    let leading = digits.iter().take_while(|&&d| d == b'0').count();
    if leading == digits.len() {
        return (negative, vec![b'0'], 0);
    }
    digits.drain(..leading);
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    let exp = exp_part + int_part.len() as i32 - 1 - leading as i32;
    (negative, digits, exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    fn s(v: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_match_orjson() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (1.5e-7, "1.5e-7"),
            (1e-5, "0.00001"),
            (1.5e-5, "0.000015"),
            (9.99e-6, "9.99e-6"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (12345.678, "12345.678"),
            (100.0, "100.0"),
            (-2.5, "-2.5"),
            (9999999999999998.0, "9999999999999998.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (f64::NEG_INFINITY, "null"),
        ];
        for (v, want) in cases {
            assert_eq!(f(v), want, "{v:?}");
        }
    }

    #[test]
    fn strings_escape_only_what_json_requires() {
        assert_eq!(s("plain"), "\"plain\"");
        assert_eq!(s("a\"b\\c/"), r#""a\"b\\c/""#);
        assert_eq!(s("\n\t\r\u{8}\u{c}"), r#""\n\t\r\b\f""#);
        assert_eq!(s("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(s("é😀\u{2028}"), "\"é😀\u{2028}\"");
    }

    #[test]
    fn the_word_scan_finds_every_byte_that_needs_escaping() {
        // Each special byte at every position of strings around the word size.
        for len in 1..=24 {
            for at in 0..len {
                for special in (0u8..0x20).chain([b'"', b'\\']) {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    let text = String::from_utf8(bytes).unwrap();
                    let mut fast = Vec::new();
                    write_str(&mut fast, &text);
                    let mut slow = vec![b'"'];
                    for &b in text.as_bytes() {
                        match ESCAPE[b as usize] {
                            0 => slow.push(b),
                            b'u' => slow.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                            e => slow.extend_from_slice(&[b'\\', e]),
                        }
                    }
                    slow.push(b'"');
                    assert_eq!(fast, slow, "{text:?}");
                }
            }
        }
        assert_eq!(s("héllo wörld, ünïcode ✓"), "\"héllo wörld, ünïcode ✓\"");
    }

    #[test]
    fn integers_cover_the_64_bit_range() {
        let mut out = Vec::new();
        write_i64(&mut out, i64::MIN);
        out.push(b',');
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, b"-9223372036854775808,18446744073709551615");
    }
}
