use std::fs;
use std::path::PathBuf;

use minijinja::{ErrorKind, Value};

use super::{describe, escapes_html, innermost, new_environment, STRING_TEMPLATE_NAME};

fn template_dir(label: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cello-templates-{}-{label}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for (name, source) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, source).unwrap();
    }
    dir
}

fn ctx(pairs: &[(&str, &str)]) -> Value {
    Value::from_iter(pairs.iter().map(|(k, v)| (*k, *v)))
}

#[test]
fn html_xml_and_string_templates_escape() {
    for name in [
        "page.html",
        "a/b/page.HTML",
        "page.htm",
        "feed.xml",
        "page.html.j2",
        "page.xhtml",
        STRING_TEMPLATE_NAME,
    ] {
        assert!(escapes_html(name), "{name}");
    }
    for name in ["mail.txt", "page.md", "html", "data.json", "page.j2"] {
        assert!(!escapes_html(name), "{name}");
    }
}

#[test]
fn escapes_html_templates_but_not_text_ones() {
    let dir = template_dir(
        "escape",
        &[("p.html", "<p>{{ x }}</p>"), ("p.txt", "{{ x }}")],
    );
    let env = new_environment(dir.clone(), true, false);
    let context = ctx(&[("x", "<script>&'\"")]);
    let html = env
        .get_template("p.html")
        .unwrap()
        .render(&context)
        .unwrap();
    assert_eq!(html, "<p>&lt;script&gt;&amp;&#x27;&quot;</p>");
    let text = env.get_template("p.txt").unwrap().render(&context).unwrap();
    assert_eq!(text, "<script>&'\"");
    let off = new_environment(dir.clone(), false, false);
    let raw = off
        .get_template("p.html")
        .unwrap()
        .render(&context)
        .unwrap();
    assert_eq!(raw, "<p><script>&'\"</p>");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn safe_strings_are_not_escaped() {
    let env = new_environment(PathBuf::from("/nonexistent"), true, false);
    let context = Value::from_iter([("m", Value::from_safe_string("<b>ok</b>".into()))]);
    let out = env
        .render_named_str(STRING_TEMPLATE_NAME, "{{ m }}", context)
        .unwrap();
    assert_eq!(out, "<b>ok</b>");
}

#[test]
fn extends_and_includes_load_from_the_directory() {
    let dir = template_dir(
        "extends",
        &[
            (
                "base.html",
                "<title>{% block t %}{% endblock %}</title>{% include 'part/foot.html' %}",
            ),
            (
                "child.html",
                "{% extends 'base.html' %}{% block t %}{{ x }}{% endblock %}",
            ),
            ("part/foot.html", "<footer>{{ x|upper }}</footer>"),
        ],
    );
    let env = new_environment(dir.clone(), true, false);
    let out = env
        .get_template("child.html")
        .unwrap()
        .render(ctx(&[("x", "hi")]))
        .unwrap();
    assert_eq!(out, "<title>hi</title><footer>HI</footer>");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn paths_outside_the_directory_are_not_found() {
    let dir = template_dir("outside", &[("inner/ok.txt", "ok")]);
    let env = new_environment(dir.join("inner"), true, false);
    for name in ["../inner/ok.txt", "/etc/passwd", "a/../../x"] {
        let err = env.get_template(name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TemplateNotFound, "{name}");
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn errors_name_the_template_and_line() {
    let env = new_environment(PathBuf::from("/nonexistent"), true, false);
    let err = env
        .render_named_str(STRING_TEMPLATE_NAME, "one\n{% if %}", Value::from(()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SyntaxError);
    let message = describe(&err);
    assert!(message.starts_with("syntax error: "), "{message}");
    assert!(message.ends_with("(in <string>, line 2)"), "{message}");

    let err = env.get_template("missing.html").unwrap_err();
    assert_eq!(describe(&err), "template \"missing.html\" does not exist");
}

#[test]
fn undefined_is_empty_unless_strict() {
    let lenient = new_environment(PathBuf::from("/nonexistent"), true, false);
    let out = lenient
        .render_named_str(STRING_TEMPLATE_NAME, "[{{ nope }}]", Value::from(()))
        .unwrap();
    assert_eq!(out, "[]");
    let strict = new_environment(PathBuf::from("/nonexistent"), true, true);
    let err = strict
        .render_named_str(STRING_TEMPLATE_NAME, "[{{ nope }}]", Value::from(()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UndefinedError);
}

#[test]
fn the_innermost_error_locates_a_failure_in_an_included_template() {
    let dir = template_dir(
        "innermost",
        &[
            ("outer.txt", "a\n{% include 'inner.txt' %}"),
            ("inner.txt", "x\n{{ nope() }}"),
        ],
    );
    let env = new_environment(dir.clone(), true, false);
    let err = env
        .get_template("outer.txt")
        .unwrap()
        .render(())
        .unwrap_err();
    let inner = innermost(&err);
    assert_eq!((inner.name(), inner.line()), (Some("inner.txt"), Some(2)));
    fs::remove_dir_all(dir).unwrap();
}
