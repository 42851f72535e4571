use std::path::Path;

use super::*;

const CT: &str = "multipart/form-data; boundary=XyZ";

fn root() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cello-core-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn body(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (headers, content) in parts {
        out.extend_from_slice(b"--XyZ\r\n");
        out.extend_from_slice(headers.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--XyZ--\r\n");
    out
}

/// Feeds `data` in chunks of `step` bytes.
fn parse_in(data: &[u8], step: usize, limits: Limits, root: &Path) -> Result<Form, FormError> {
    let mut parser = FormParser::new(CT, limits, root.to_path_buf())?;
    for chunk in data.chunks(step.max(1)) {
        parser.feed(Bytes::copy_from_slice(chunk))?;
    }
    parser.finish()
}

fn sample() -> Vec<u8> {
    body(&[
        ("Content-Disposition: form-data; name=\"title\"", b"hello world"),
        (
            "Content-Disposition: form-data; name=\"doc\"; filename=\"../../etc/passwd\"\r\nContent-Type: text/plain",
            b"line one\r\nline two --XyZ not a boundary",
        ),
        ("Content-Disposition: form-data; name=\"title\"", b"again"),
    ])
}

#[test]
fn fields_and_files_whatever_the_chunking() {
    for step in [1, 2, 7, 64, 100_000] {
        let root = root();
        let form = parse_in(&sample(), step, Limits::default(), &root).unwrap();
        assert_eq!(form.parts.len(), 3, "step {step}");
        assert_eq!(
            form.parts[0],
            Part::Text(TextField {
                name: "title".into(),
                value: "hello world".into()
            })
        );
        let Part::File(file) = &form.parts[1] else {
            panic!("not a file")
        };
        assert_eq!(file.filename, "../../etc/passwd");
        assert_eq!(file.content_type.as_deref(), Some("text/plain"));
        assert_eq!(
            std::fs::read(&file.path).unwrap(),
            b"line one\r\nline two --XyZ not a boundary"
        );
        assert_eq!(file.size, 39);
        // The client's name never reaches the path.
        assert!(file.path.starts_with(form.dir.as_ref().unwrap().path()));
        assert!(!file.path.to_string_lossy().contains("passwd"));
        let dir = form.dir.as_ref().unwrap().path().to_owned();
        drop(form);
        assert!(!dir.exists(), "the upload directory outlived its form");
        std::fs::remove_dir_all(root).unwrap();
    }
}

#[test]
fn a_form_without_files_makes_no_directory() {
    let root = root();
    let data = body(&[("Content-Disposition: form-data; name=\"a\"", b"1")]);
    let form = parse_in(&data, 3, Limits::default(), &root).unwrap();
    assert!(form.dir.is_none());
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn empty_files_and_empty_filenames_are_files() {
    let root = root();
    let data = body(&[(
        "Content-Disposition: form-data; name=\"f\"; filename=\"\"",
        b"",
    )]);
    let form = parse_in(&data, 5, Limits::default(), &root).unwrap();
    let Part::File(file) = &form.parts[0] else {
        panic!("not a file")
    };
    assert_eq!((file.filename.as_str(), file.size), ("", 0));
    drop(form);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn limits_refuse_with_413_details() {
    let root = root();
    let big = vec![b'x'; 2000];
    let limits = Limits {
        max_file_size: 1000,
        ..Limits::default()
    };
    let data = body(&[(
        "Content-Disposition: form-data; name=\"up\"; filename=\"a\"",
        &big,
    )]);
    let e = parse_in(&data, 100, limits, &root).unwrap_err();
    assert_eq!(e.status(), 413);
    assert_eq!(
        e.detail(),
        "file \"up\" exceeds the limit of 1000 bytes per file"
    );

    let limits = Limits {
        max_form_size: 500,
        ..Limits::default()
    };
    let e = parse_in(&data, 100, limits, &root).unwrap_err();
    assert_eq!(e.detail(), "the form exceeds the limit of 500 bytes");

    let limits = Limits {
        max_field_size: 3,
        ..Limits::default()
    };
    let data = body(&[("Content-Disposition: form-data; name=\"t\"", b"abcd")]);
    let e = parse_in(&data, 100, limits, &root).unwrap_err();
    assert_eq!(
        e.detail(),
        "form field \"t\" exceeds the limit of 3 bytes per field"
    );

    let two = body(&[
        ("Content-Disposition: form-data; name=\"a\"", b"1"),
        ("Content-Disposition: form-data; name=\"b\"", b"2"),
    ]);
    let limits = Limits {
        max_fields: 1,
        ..Limits::default()
    };
    let e = parse_in(&two, 100, limits, &root).unwrap_err();
    assert_eq!(e.detail(), "the form has more than 1 fields");

    let two_files = body(&[
        (
            "Content-Disposition: form-data; name=\"a\"; filename=\"a\"",
            b"1",
        ),
        (
            "Content-Disposition: form-data; name=\"b\"; filename=\"b\"",
            b"2",
        ),
    ]);
    let limits = Limits {
        max_files: 1,
        ..Limits::default()
    };
    let e = parse_in(&two_files, 100, limits, &root).unwrap_err();
    assert_eq!(e.detail(), "the form has more than 1 files");
    // A refused form leaves nothing behind.
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn malformed_bodies_are_400() {
    let root = root();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue".to_vec(),
            "form part \"a\" ends before its closing boundary",
        ),
        (
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--XyZ".to_vec(),
            "the multipart body ends before its closing boundary",
        ),
        (
            b"no boundary at all".to_vec(),
            "the multipart body ends before its closing boundary",
        ),
        (
            b"--XyZ\r\nnot a header line\r\n\r\nx\r\n--XyZ--\r\n".to_vec(),
            "a form part has malformed headers",
        ),
        (
            body(&[("Content-Type: text/plain", b"x")]),
            "a form part has no Content-Disposition",
        ),
        (
            body(&[("Content-Disposition: form-data; filename=\"x\"", b"x")]),
            "a form part has no name in its Content-Disposition",
        ),
        (
            body(&[("Content-Disposition: attachment; name=\"x\"", b"x")]),
            "a form part's Content-Disposition is \"attachment\", not form-data",
        ),
        (
            body(&[("Content-Disposition: form-data; name=\"t\"", b"\xff\xfe")]),
            "form field \"t\" is not valid UTF-8",
        ),
    ];
    for (data, detail) in cases {
        let e = parse_in(&data, 4, Limits::default(), &root).unwrap_err();
        assert_eq!((e.status(), e.detail()), (400, detail));
    }
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn content_types_without_a_boundary_are_400() {
    for ct in ["multipart/form-data", "application/json"] {
        let e = FormParser::new(ct, Limits::default(), std::env::temp_dir())
            .err()
            .unwrap();
        assert_eq!(e.status(), 400);
    }
    let e = FormParser::new(
        "multipart/form-data",
        Limits::default(),
        std::env::temp_dir(),
    )
    .err()
    .unwrap();
    assert_eq!(
        e.detail(),
        "the multipart/form-data Content-Type has no boundary"
    );
}

#[test]
fn dispositions() {
    let d = parse_disposition(b"form-data; name=\"a\"; filename=\"x.txt\"").unwrap();
    assert_eq!(
        (d.name.as_str(), d.filename.as_deref()),
        ("a", Some("x.txt"))
    );
    let d = parse_disposition(b"Form-Data; NAME=a; filename=b.bin").unwrap();
    assert_eq!(
        (d.name.as_str(), d.filename.as_deref()),
        ("a", Some("b.bin"))
    );
    let d = parse_disposition(
        b"form-data; name=\"f\"; filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve%20%E2%82%AC.txt",
    )
    .unwrap();
    assert_eq!(d.filename.as_deref(), Some("na\u{ef}ve \u{20ac}.txt"));
    let d = parse_disposition(b"form-data; name=\"f\"; filename*=iso-8859-1'en'caf%E9").unwrap();
    assert_eq!(d.filename.as_deref(), Some("caf\u{e9}"));
    let d =
        parse_disposition(b"form-data; name=\"q\\\"uote\"; filename=\"C:\\dir\\a.txt\"").unwrap();
    assert_eq!(d.name, "q\"uote");
    assert_eq!(d.filename.as_deref(), Some("C:\\dir\\a.txt"));
    let d = parse_disposition("form-data; name=\"名前\"".as_bytes()).unwrap();
    assert_eq!(d.name, "名前");
    assert!(parse_disposition(b"form-data; name=\"open").is_err());
    assert!(parse_disposition(b"form-data; name=\"f\"; filename*=garbage").is_err());
    assert!(parse_disposition(b"form-data; name=\"f\"; filename*=UTF-8''%FF").is_err());
}

#[test]
fn spools_past_the_threshold_and_leaves_no_name_behind() {
    let root = root();
    let mut spool = Spool::new(10, Some(root.clone()));
    spool.write(b"01234").unwrap();
    spool.write(b"56789").unwrap();
    let Spooled::Memory(bytes) = Spool::new(10, Some(root.clone())).finish() else {
        panic!("an empty spool is in memory")
    };
    assert!(bytes.is_empty());
    spool.write(b"abc").unwrap();
    let Spooled::File(file) = spool.finish() else {
        panic!("not spooled")
    };
    assert_eq!(file.len(), 13);
    assert_eq!(&file.read_all().unwrap()[..], b"0123456789abc");
    assert_eq!(&file.read_at(8, 3).unwrap()[..], b"89a");
    assert!(file.read_at(13, 3).unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_spool_the_disk_refuses_stays_in_memory() {
    let missing = std::env::temp_dir().join(format!("cello-missing-{}", uuid::Uuid::new_v4()));
    let mut spool = Spool::new(2, Some(missing));
    spool.write(b"abc").unwrap();
    spool.write(b"def").unwrap();
    let Spooled::Memory(bytes) = spool.finish() else {
        panic!("spooled to a directory that does not exist")
    };
    assert_eq!(&bytes[..], b"abcdef");
}
