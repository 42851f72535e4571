//! A form part's `Content-Disposition` (RFC 7578 §4.2): its field name and,
//! for a file, the client's file name, including the RFC 5987 `filename*`
//! form. The file name is kept as text only; it never becomes a path.

use percent_encoding::percent_decode;

/// What a part's `Content-Disposition` says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub name: String,
    /// Present (possibly empty) when the part is a file.
    pub filename: Option<String>,
}

/// Parses `form-data; name="field"; filename="a.txt"`. The message of an
/// error is the detail of the 400 answer.
pub fn parse(value: &[u8]) -> Result<Disposition, String> {
    let text = std::str::from_utf8(value)
        .map_err(|_| "a form part's Content-Disposition is not valid UTF-8".to_owned())?;
    let (kind, mut rest) = text.split_once(';').unwrap_or((text, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(format!(
            "a form part's Content-Disposition is {:?}, not form-data",
            kind.trim()
        ));
    }
    let mut name = None;
    let mut filename = None;
    let mut extended_filename = None;
    while !rest.trim_start().is_empty() {
        let (key, value, after) = next_parameter(rest)?;
        rest = after;
        match key.to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "filename" => filename = Some(value),
            "filename*" => extended_filename = Some(decode_extended(&value)?),
            _ => {}
        }
    }
    let name =
        name.ok_or_else(|| "a form part has no name in its Content-Disposition".to_owned())?;
    Ok(Disposition {
        name,
        filename: extended_filename.or(filename),
    })
}

/// One `key=value` (value quoted or not) and what follows it.
fn next_parameter(input: &str) -> Result<(String, String, &str), String> {
    let input = input.trim_start_matches(|c: char| c == ';' || c.is_ascii_whitespace());
    let (key, after_key) = input.split_once('=').ok_or_else(|| {
        format!("a form part's Content-Disposition has a parameter without a value: {input:?}")
    })?;
    let after_key = after_key.trim_start();
    if let Some(quoted) = after_key.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((key.trim().to_owned(), value, &quoted[i + 1..])),
                // Only `\"` and `\\` are escapes: browsers leave other
                // backslashes (Windows paths) as they are.
                '\\' if matches!(quoted[i + 1..].chars().next(), Some('"' | '\\')) => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                c => value.push(c),
            }
        }
        Err("a form part's Content-Disposition has an unterminated quoted value".to_owned())
    } else {
        let (value, after) = after_key.split_once(';').unwrap_or((after_key, ""));
        Ok((key.trim().to_owned(), value.trim().to_owned(), after))
    }
}

/// Decodes an RFC 5987 value: `UTF-8''na%C3%AFve.txt` (or ISO-8859-1).
fn decode_extended(value: &str) -> Result<String, String> {
    let malformed = || format!("a form part's filename* is not an RFC 5987 value: {value:?}");
    let mut pieces = value.splitn(3, '\'');
    let (Some(charset), Some(_language), Some(encoded)) =
        (pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(malformed());
    };
    let bytes: Vec<u8> = percent_decode(encoded.as_bytes()).collect();
    if charset.eq_ignore_ascii_case("utf-8") {
        String::from_utf8(bytes).map_err(|_| malformed())
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        Ok(bytes.into_iter().map(char::from).collect())
    } else {
        Err(format!(
            "a form part's filename* uses the unsupported charset {charset:?}"
        ))
    }
}
