//! The HTML page that lists a directory (when listings are on).

use std::path::Path;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::path::{open_under, Hidden};

/// Everything but RFC 3986's unreserved characters is escaped in a link,
/// so a name can never end the attribute or become a scheme or a query.
const LINK: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One entry of a listing.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    name: String,
    is_dir: bool,
}

/// The listing of `dir` (a directory under `root`, resolved) for the URL
/// `url` (ending in `/`). Hidden entries, names that are not UTF-8 and
/// symlinks that lead outside the root are left out: none could be served.
pub fn render(root: &Path, dir: &Path, url: &str, hidden: &Hidden) -> std::io::Result<String> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || name.ends_with(['.', ' ']) {
            continue;
        }
        if let Ok(found) = open_under(root, &item.path(), hidden) {
            entries.push(Entry {
                name,
                is_dir: found.metadata.is_dir(),
            });
        }
    }
    entries.sort_by(|a, b| (!a.is_dir, &a.name).cmp(&(!b.is_dir, &b.name)));
    let title = escape(url);
    let mut page = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Index of {title}</title>\n</head>\n<body>\n\
         <h1>Index of {title}</h1>\n<ul>\n"
    );
    if dir != root {
        page.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for entry in entries {
        let slash = if entry.is_dir { "/" } else { "" };
        page.push_str(&format!(
            "<li><a href=\"./{}{slash}\">{}{slash}</a></li>\n",
            utf8_percent_encode(&entry.name, LINK),
            escape(&entry.name)
        ));
    }
    page.push_str("</ul>\n</body>\n</html>\n");
    Ok(page)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::static_files::path::tests::Tree;

    #[test]
    fn a_listing_escapes_names_and_leaves_out_what_cannot_be_served() {
        let tree = Tree::new("listing");
        let odd = "<b>&\"it's\" 50%.txt";
        std::fs::write(tree.root.join(odd), "x").unwrap();
        std::fs::write(tree.root.join("notes.bak"), "x").unwrap();
        let hidden = Hidden::new(vec!["*.bak".into()]);
        let page = render(&tree.root, &tree.root, "/static/", &hidden).unwrap();
        assert!(page.contains("<title>Index of /static/</title>"));
        assert!(page.contains(
            "<a href=\"./%3Cb%3E%26%22it%27s%22%2050%25.txt\">\
             &lt;b&gt;&amp;&quot;it&#39;s&quot; 50%.txt</a>"
        ));
        assert!(page.contains("<a href=\"./css/\">css/</a>"));
        assert!(page.contains("<a href=\"./hello.txt\">hello.txt</a>"));
        assert!(page.contains("<a href=\"./inside-link.txt\">"));
        for left_out in [
            ".secret",
            "notes.bak",
            "outside-link",
            "\"./etc",
            "public.txt",
            "../",
        ] {
            assert!(!page.contains(left_out), "{left_out} in\n{page}");
        }
        // Directories first, then files, each by name.
        assert!(page.find("css/").unwrap() < page.find("hello.txt").unwrap());
    }

    #[test]
    fn a_subdirectory_links_to_its_parent() {
        let tree = Tree::new("listing-sub");
        let page = render(
            &tree.root,
            &tree.root.join("css"),
            "/static/css/",
            &Hidden::default(),
        )
        .unwrap();
        assert!(page.contains("<a href=\"../\">../</a>"));
        assert!(page.contains("<a href=\"./site.css\">site.css</a>"));
    }
}
