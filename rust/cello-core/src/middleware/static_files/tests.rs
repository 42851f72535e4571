//! The layer as a door drives it: request heads in, answers out.

use super::path::tests::{Tree, TRAVERSAL};
use super::*;
use crate::http::query::decode_path;
use crate::middleware::tests::head;

fn layer(tree: &Tree, configure: impl FnOnce(&mut StaticFilesOptions)) -> StaticFiles {
    let mut options = StaticFilesOptions::new(&tree.root, "/static");
    configure(&mut options);
    StaticFiles::new(options).unwrap()
}

/// Sends `raw` as the native door would: decoded path, raw path kept.
fn send(layer: &StaticFiles, method: &str, raw: &str, headers: &[(&str, &str)]) -> Option<Answer> {
    let mut head = head(&decode_path(raw), headers);
    head.method = http::Method::from_bytes(method.as_bytes()).unwrap();
    head.raw_path = Some(raw.to_owned());
    layer.request(&mut head, &mut Context::default())
}

fn get(layer: &StaticFiles, raw: &str, headers: &[(&str, &str)]) -> Answer {
    send(layer, "GET", raw, headers).unwrap_or_else(|| panic!("{raw} fell through"))
}

fn body(answer: &Answer) -> Bytes {
    match &answer.body {
        Content::Bytes(bytes) => bytes.clone(),
        Content::File(slice) => slice.read_all().unwrap(),
    }
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).map(|v| v.to_str().unwrap())
}

#[test]
fn a_file_is_served_as_a_slice_with_its_headers() {
    let tree = Tree::new("serve");
    let files = layer(&tree, |o| {
        o.cache_control = Some("1h".into());
        o.headers = vec![("x-served-by".into(), "cello".into())];
    });
    let answer = get(&files, "/static/hello.txt", &[]);
    assert_eq!(answer.status, 200);
    assert!(matches!(&answer.body, Content::File(s) if s.offset == 0 && s.len == 5));
    assert_eq!(body(&answer), "hello");
    assert_eq!(
        header(&answer, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&answer, "accept-ranges"), Some("bytes"));
    assert_eq!(
        header(&answer, "cache-control"),
        Some("public, max-age=3600")
    );
    assert_eq!(header(&answer, "x-served-by"), Some("cello"));
    assert!(header(&answer, "etag").unwrap().starts_with("\"5-"));
    assert!(header(&answer, "last-modified").unwrap().ends_with(" GMT"));
    assert!(header(&answer, "vary").is_none());
    assert_eq!(body(&get(&files, "/static/css/site.css", &[])), "body{}");
    assert_eq!(body(&get(&files, "/static/inside-link.txt", &[])), "hello");
}

#[test]
fn validators_can_be_turned_off() {
    let tree = Tree::new("no-validators");
    let files = layer(&tree, |o| {
        o.etag = false;
        o.last_modified = false;
    });
    let answer = get(&files, "/static/hello.txt", &[]);
    assert!(header(&answer, "etag").is_none());
    assert!(header(&answer, "last-modified").is_none());
    let since = "Sun, 01 Jan 2090 00:00:00 GMT";
    assert_eq!(
        get(&files, "/static/hello.txt", &[("if-modified-since", since)]).status,
        200
    );
    assert_eq!(
        get(&files, "/static/hello.txt", &[("if-none-match", "*")]).status,
        304
    );
}

#[test]
fn other_methods_and_other_paths_are_not_this_layer_s_business() {
    let tree = Tree::new("methods");
    let files = layer(&tree, |_| {});
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        assert!(
            send(&files, method, "/static/hello.txt", &[]).is_none(),
            "{method}"
        );
    }
    for raw in ["/", "/staticx/hello.txt", "/other/static/hello.txt"] {
        assert!(send(&files, "GET", raw, &[]).is_none(), "{raw}");
    }
    let head = send(&files, "HEAD", "/static/hello.txt", &[]).unwrap();
    assert_eq!(head.status, 200);
    assert!(matches!(&head.body, Content::File(s) if s.len == 5));
}

#[test]
fn missing_files_fall_through_to_routing() {
    let tree = Tree::new("missing");
    let files = layer(&tree, |_| {});
    for raw in [
        "/static/nope.txt",
        "/static/css/nope.css",
        "/static/hello.txt/",
        "/static/%252e%252e/hello.txt",
        "/static/css",
        "/static/",
    ] {
        assert!(send(&files, "GET", raw, &[]).is_none(), "{raw}");
    }
}

fn assert_refused(answer: Option<Answer>, raw: &str) {
    let answer = answer.unwrap_or_else(|| panic!("{raw} fell through"));
    assert_eq!(answer.status, 404, "{raw}");
    assert_eq!(
        header(&answer, "content-type"),
        Some("application/problem+json")
    );
    let text = String::from_utf8(body(&answer).to_vec()).unwrap();
    assert!(
        text.contains("\"detail\":\"no route for GET "),
        "{raw}: {text}"
    );
}

#[test]
fn traversal_and_hidden_paths_get_the_ordinary_404() {
    let tree = Tree::new("traversal");
    let files = layer(&tree, |o| o.hide = vec!["*.bak".into()]);
    std::fs::write(tree.root.join("notes.bak"), "x").unwrap();
    let symlinks = [
        "/static/outside-link.txt",
        "/static/etc/passwd",
        "/static/etc/hostname",
        "/static/public.txt",
        "/static/notes.bak",
        "/static/.secret",
    ];
    for raw in TRAVERSAL
        .iter()
        .filter(|r| r.starts_with("/static"))
        .chain(&symlinks)
    {
        assert_refused(send(&files, "GET", raw, &[]), raw);
    }
}

#[test]
fn a_door_without_the_raw_path_is_not_decoded_twice() {
    let tree = Tree::new("decoded");
    std::fs::write(tree.root.join("100%.txt"), "full").unwrap();
    let files = layer(&tree, |_| {});
    let mut head = head("/static/100%.txt", &[]);
    let answer = files.request(&mut head, &mut Context::default()).unwrap();
    assert_eq!(body(&answer), "full");
    let mut head = crate::middleware::tests::head("/static/../hello.txt", &[]);
    assert_refused(
        files.request(&mut head, &mut Context::default()),
        "decoded ..",
    );
}

#[test]
fn a_directory_serves_its_index_after_a_redirect_to_its_slash() {
    let tree = Tree::new("index");
    std::fs::write(tree.root.join("css/index.html"), "<h1>css</h1>").unwrap();
    let files = layer(&tree, |_| {});
    let redirect = send(&files, "GET", "/static/css", &[]).unwrap();
    assert_eq!(redirect.status, 301);
    assert_eq!(header(&redirect, "location"), Some("/static/css/"));
    let mut with_query = crate::middleware::tests::head("/static/css", &[]);
    with_query.query = "v=1".into();
    let redirect = files
        .request(&mut with_query, &mut Context::default())
        .unwrap();
    assert_eq!(header(&redirect, "location"), Some("/static/css/?v=1"));
    let index = get(&files, "/static/css/", &[]);
    assert_eq!(body(&index), "<h1>css</h1>");
    assert_eq!(
        header(&index, "content-type"),
        Some("text/html; charset=utf-8")
    );

    let no_index = layer(&tree, |o| o.index = None);
    assert!(send(&no_index, "GET", "/static/css/", &[]).is_none());
}

#[test]
fn a_directory_without_an_index_is_listed_only_when_asked() {
    let tree = Tree::new("listed");
    assert!(send(&layer(&tree, |_| {}), "GET", "/static/", &[]).is_none());
    let listed = layer(&tree, |o| o.listing = true);
    let page = get(&listed, "/static/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let text = String::from_utf8(body(&page).to_vec()).unwrap();
    assert!(text.contains("Index of /static/"), "{text}");
    assert!(text.contains("hello.txt") && !text.contains(".secret"));
    assert_eq!(send(&listed, "GET", "/static", &[]).unwrap().status, 301);
}

#[test]
fn conditional_requests_get_304_with_the_validators() {
    let tree = Tree::new("conditional");
    let files = layer(&tree, |o| o.cache_control = Some("no-cache".into()));
    let first = get(&files, "/static/hello.txt", &[]);
    let etag = header(&first, "etag").unwrap().to_owned();
    let modified = header(&first, "last-modified").unwrap().to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"nope\", {etag}");
    for headers in [
        vec![("if-none-match", etag.as_str())],
        vec![("if-none-match", weak.as_str())],
        vec![("if-none-match", listed.as_str())],
        vec![("if-none-match", "*")],
        vec![("if-modified-since", modified.as_str())],
    ] {
        let answer = get(&files, "/static/hello.txt", &headers);
        assert_eq!(answer.status, 304, "{headers:?}");
        assert!(body(&answer).is_empty());
        assert_eq!(header(&answer, "etag"), Some(etag.as_str()));
        assert_eq!(header(&answer, "last-modified"), Some(modified.as_str()));
        assert_eq!(header(&answer, "cache-control"), Some("no-cache"));
        assert!(header(&answer, "content-type").is_none());
    }
    for headers in [
        vec![("if-none-match", "\"other\"")],
        // If-None-Match wins over a matching If-Modified-Since.
        vec![
            ("if-none-match", "\"other\""),
            ("if-modified-since", modified.as_str()),
        ],
        vec![("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")],
        vec![("if-modified-since", "not a date")],
        // A date in the future is not trusted.
        vec![("if-modified-since", "Sat, 01 Jan 2150 00:00:00 GMT")],
        vec![("if-none-match", "garbage")],
    ] {
        assert_eq!(
            get(&files, "/static/hello.txt", &headers).status,
            200,
            "{headers:?}"
        );
    }
}

#[test]
fn ranges_give_206_416_or_the_whole_file() {
    let tree = Tree::new("ranges");
    std::fs::write(tree.root.join("digits.txt"), "0123456789").unwrap();
    let files = layer(&tree, |_| {});
    let path = "/static/digits.txt";
    for (range, status, content_range, expected) in [
        ("bytes=0-3", 206, Some("bytes 0-3/10"), "0123"),
        ("bytes=7-", 206, Some("bytes 7-9/10"), "789"),
        ("bytes=-2", 206, Some("bytes 8-9/10"), "89"),
        ("bytes=5-500", 206, Some("bytes 5-9/10"), "56789"),
        ("bytes=0-1,4-5", 200, None, "0123456789"),
        ("bytes=abc", 200, None, "0123456789"),
        ("items=1-2", 200, None, "0123456789"),
        ("bytes=5-1", 200, None, "0123456789"),
        ("bytes=99999999999999999999999-", 200, None, "0123456789"),
    ] {
        let answer = get(&files, path, &[("range", range)]);
        assert_eq!(answer.status, status, "{range}");
        assert_eq!(header(&answer, "content-range"), content_range, "{range}");
        assert_eq!(body(&answer), expected, "{range}");
    }
    let refused = get(&files, path, &[("range", "bytes=10-")]);
    assert_eq!(refused.status, 416);
    assert_eq!(header(&refused, "content-range"), Some("bytes */10"));
    assert_eq!(
        header(&refused, "content-type"),
        Some("application/problem+json")
    );
    assert!(String::from_utf8(body(&refused).to_vec())
        .unwrap()
        .contains("\"status\":416"));
}

#[test]
fn if_range_honours_the_range_only_for_the_same_file() {
    let tree = Tree::new("if-range");
    let files = layer(&tree, |_| {});
    let path = "/static/hello.txt";
    let first = get(&files, path, &[]);
    let etag = header(&first, "etag").unwrap().to_owned();
    let modified = header(&first, "last-modified").unwrap().to_owned();
    let range = ("range", "bytes=1-2");
    for (validator, status) in [
        (etag.as_str(), 206),
        (modified.as_str(), 206),
        ("\"stale\"", 200),
        (&format!("W/{etag}"), 200),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 200),
        ("nonsense", 200),
    ] {
        let answer = get(&files, path, &[range, ("if-range", validator)]);
        assert_eq!(answer.status, status, "{validator}");
    }
}

#[test]
fn precompressed_files_go_to_clients_that_take_them() {
    let tree = Tree::new("precompressed");
    std::fs::write(tree.root.join("app.js"), "let a = 1;").unwrap();
    std::fs::write(tree.root.join("app.js.br"), "BR").unwrap();
    std::fs::write(tree.root.join("app.js.gz"), "GZIP").unwrap();
    let files = layer(&tree, |o| o.precompressed = true);
    let path = "/static/app.js";
    let plain = get(&files, path, &[]);
    assert_eq!(body(&plain), "let a = 1;");
    assert!(header(&plain, "content-encoding").is_none());
    assert_eq!(header(&plain, "vary"), Some("accept-encoding"));
    let mut etags = vec![header(&plain, "etag").unwrap().to_owned()];
    for (accept, encoding, expected) in [
        ("gzip, br", Some("br"), "BR"),
        ("gzip", Some("gzip"), "GZIP"),
        ("br;q=0.5, gzip", Some("gzip"), "GZIP"),
        ("br;q=0, gzip;q=0", None, "let a = 1;"),
        ("identity", None, "let a = 1;"),
    ] {
        let answer = get(&files, path, &[("accept-encoding", accept)]);
        assert_eq!(header(&answer, "content-encoding"), encoding, "{accept}");
        assert_eq!(body(&answer), expected, "{accept}");
        assert_eq!(
            header(&answer, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(header(&answer, "vary"), Some("accept-encoding"));
        etags.push(header(&answer, "etag").unwrap().to_owned());
    }
    etags.sort();
    etags.dedup();
    assert_eq!(
        etags.len(),
        3,
        "identity, br and gzip each have their own tag"
    );
    // A range applies to the bytes sent: the compressed ones.
    let part = get(
        &files,
        path,
        &[("accept-encoding", "br"), ("range", "bytes=1-")],
    );
    assert_eq!((part.status, body(&part)), (206, Bytes::from("R")));
    // Without the option, the stored variants are ignored.
    let off = layer(&tree, |_| {});
    let answer = get(&off, path, &[("accept-encoding", "br")]);
    assert!(header(&answer, "content-encoding").is_none());
}

#[test]
fn a_variant_that_leads_outside_the_root_is_not_served() {
    let tree = Tree::new("variant-link");
    std::fs::write(tree.root.join("app.js"), "plain").unwrap();
    std::os::unix::fs::symlink(tree.base.join("outside.txt"), tree.root.join("app.js.gz")).unwrap();
    let files = layer(&tree, |o| o.precompressed = true);
    let answer = get(&files, "/static/app.js", &[("accept-encoding", "gzip")]);
    assert_eq!(body(&answer), "plain");
}

#[test]
fn bad_options_name_the_option() {
    let tree = Tree::new("options");
    let error = |configure: fn(&mut StaticFilesOptions)| {
        let mut options = StaticFilesOptions::new(&tree.root, "/static");
        configure(&mut options);
        StaticFiles::new(options).err().unwrap().option
    };
    assert_eq!(error(|o| o.root = "/definitely/not/here".into()), "root");
    assert_eq!(error(|o| o.root = "/etc/hostname".into()), "root");
    assert_eq!(error(|o| o.prefix = "static".into()), "prefix");
    assert_eq!(error(|o| o.prefix = "/a//b".into()), "prefix");
    assert_eq!(error(|o| o.prefix = "/a/../b".into()), "prefix");
    assert_eq!(error(|o| o.prefix = "/a%2fb".into()), "prefix");
    assert_eq!(
        error(|o| o.index = Some("../index.html".into())),
        "index_file"
    );
    assert_eq!(error(|o| o.index = Some(String::new())), "index_file");
    assert_eq!(
        error(|o| o.cache_control = Some("1 fortnight".into())),
        "cache_control"
    );
    assert_eq!(
        error(|o| o.headers = vec![("bad name".into(), "x".into())]),
        "header"
    );
    assert_eq!(
        error(|o| o.headers = vec![("x-a".into(), "a\nb".into())]),
        "header"
    );
    assert_eq!(error(|o| o.hide = vec![String::new()]), "hide_pattern");
    let message = StaticFiles::new(StaticFilesOptions::new(&tree.root, "static"))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        message,
        "static files option 'prefix': \"static\" must start with '/'"
    );
}

#[test]
fn a_root_prefix_serves_every_path() {
    let tree = Tree::new("root-prefix");
    for prefix in ["/", ""] {
        let mut options = StaticFilesOptions::new(&tree.root, prefix);
        options.listing = true;
        let files = match StaticFiles::new(options) {
            Ok(files) => files,
            Err(e) => {
                assert_eq!(prefix, "", "{e}");
                continue;
            }
        };
        assert_eq!(body(&get(&files, "/hello.txt", &[])), "hello");
        assert_eq!(get(&files, "/", &[]).status, 200);
        assert_refused(send(&files, "GET", "/../hello.txt", &[]), "/../hello.txt");
    }
}
