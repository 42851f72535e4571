//! From a request path to a file under the root, safely: the path is
//! decoded once, segment by segment, anything that could step outside the
//! root or reach a hidden file is refused, and the file found is checked
//! again after symlinks are resolved.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

/// What the path under the prefix names.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// The path is an attempt to reach what must not be served.
    Refused,
    /// Decoded segments below the root, and whether the path ended in `/`.
    Below {
        segments: Vec<String>,
        trailing_slash: bool,
    },
}

/// Splits the part of `raw` below `prefix` into decoded segments.
///
/// `raw` is the path as received; `encoded` says whether it still holds its
/// percent escapes (a door that was only given the decoded path passes it
/// with `encoded` false, and it is then not decoded a second time). Each
/// segment is decoded on its own, so an escaped `/` (`%2f`) stays inside its
/// segment, where it is refused, instead of becoming a separator.
pub fn below_prefix(prefix: &[String], raw: &str, encoded: bool) -> Target {
    let Some(rest) = raw.strip_prefix('/') else {
        return Target::Refused;
    };
    let mut pieces = rest.split('/');
    for expected in prefix {
        match pieces.next().map(|p| decode(p, encoded)) {
            Some(Some(found)) if found == *expected => {}
            // The decoded path was under the prefix but the raw one is not:
            // escapes inside the prefix itself (`/st%2fatic`), a trick.
            _ => return Target::Refused,
        }
    }
    let pieces: Vec<&str> = pieces.collect();
    let mut segments = Vec::with_capacity(pieces.len());
    let mut trailing_slash = false;
    for (i, piece) in pieces.iter().enumerate() {
        if piece.is_empty() {
            // Only a final `/` (a directory) may leave a segment empty;
            // `//etc/passwd` inside a path is an absolute-path trick.
            if i + 1 == pieces.len() {
                trailing_slash = true;
                continue;
            }
            return Target::Refused;
        }
        match decode(piece, encoded) {
            Some(segment) if servable_name(&segment) => segments.push(segment),
            _ => return Target::Refused,
        }
    }
    Target::Below {
        segments,
        trailing_slash,
    }
}

fn decode(piece: &str, encoded: bool) -> Option<String> {
    if !encoded {
        return Some(piece.to_owned());
    }
    // Invalid UTF-8 (overlong forms such as `%c0%ae` included) is refused
    // rather than replaced: no file name is reached by a lossy guess.
    percent_decode_str(piece)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// A segment that may name a file: no separators of any platform, no
/// control characters, not hidden (`.`, `..` and dotfiles all start with a
/// dot), and no trailing dot or space, which Windows file systems drop
/// (`secret.txt.` would be `secret.txt` there).
fn servable_name(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && !segment.ends_with(['.', ' '])
        && !segment
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// Files a configuration hides beyond dotfiles: glob patterns.
#[derive(Debug, Clone, Default)]
pub struct Hidden {
    patterns: Vec<String>,
}

impl Hidden {
    /// `*` matches within one segment, `**` across segments, `?` one
    /// character. A pattern without `/` is matched against every segment
    /// (`*.bak` hides such files in any folder, `private` a folder and all
    /// below it); one with `/` against the whole path below the root.
    pub fn new(patterns: Vec<String>) -> Self {
        Hidden { patterns }
    }

    pub fn hides<S: AsRef<str>>(&self, segments: &[S]) -> bool {
        if segments.iter().any(|s| s.as_ref().starts_with('.')) {
            return true;
        }
        if self.patterns.is_empty() {
            return false;
        }
        let joined = segments
            .iter()
            .map(|s| s.as_ref())
            .collect::<Vec<_>>()
            .join("/");
        self.patterns.iter().any(|pattern| {
            if pattern.contains('/') {
                glob(
                    pattern.trim_start_matches('/').as_bytes(),
                    joined.as_bytes(),
                )
            } else {
                segments
                    .iter()
                    .any(|s| glob(pattern.as_bytes(), s.as_ref().as_bytes()))
            }
        })
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') if pattern.get(1) == Some(&b'*') => {
            let rest = pattern[2..].strip_prefix(b"/").unwrap_or(&pattern[2..]);
            (0..=text.len()).any(|at| glob(rest, &text[at..]))
        }
        Some(b'*') => {
            let within = text.iter().position(|&b| b == b'/').unwrap_or(text.len());
            (0..=within).any(|at| glob(&pattern[1..], &text[at..]))
        }
        Some(b'?') => {
            // One character, not one byte: skip a whole UTF-8 sequence.
            match text.first() {
                Some(&b'/') | None => false,
                Some(_) => {
                    let width = text[1..].iter().take_while(|&&b| b & 0xC0 == 0x80).count() + 1;
                    glob(&pattern[1..], &text[width..])
                }
            }
        }
        Some(&literal) => text.first() == Some(&literal) && glob(&pattern[1..], &text[1..]),
    }
}

/// An opened file or directory inside the root.
pub struct Found {
    /// The resolved path, symlinks followed.
    pub path: PathBuf,
    pub file: File,
    pub metadata: std::fs::Metadata,
}

/// Why `open_under` found nothing to serve.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// Nothing there (or nothing readable): routing may still answer.
    Absent,
    /// It resolves outside the root, to a hidden file, or to something
    /// that is neither a file nor a directory.
    Forbidden,
}

/// Opens `path` when, with every symlink resolved, it is still under
/// `root` (itself resolved) and not hidden. Symlinks inside the root are
/// followed; one leading outside it is refused.
///
/// Between resolving and opening, only someone who can write under the
/// root could swap a component for a symlink; the file is opened without
/// blocking (a FIFO must not stall the I/O thread) and its type is checked
/// on the open descriptor.
pub fn open_under(root: &Path, path: &Path, hidden: &Hidden) -> Result<Found, Miss> {
    let real = std::fs::canonicalize(path).map_err(|_| Miss::Absent)?;
    let Ok(inside) = real.strip_prefix(root) else {
        return Err(Miss::Forbidden);
    };
    let segments: Vec<&str> = match inside.iter().map(OsStr::to_str).collect::<Option<Vec<_>>>() {
        Some(segments) => segments,
        None => return Err(Miss::Forbidden),
    };
    if hidden.hides(&segments) {
        return Err(Miss::Forbidden);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&real)
        // Unreadable is treated as absent: whether a file exists that the
        // server may not read is nobody's business.
        .map_err(|_| Miss::Absent)?;
    let metadata = file.metadata().map_err(|_| Miss::Absent)?;
    if !metadata.is_file() && !metadata.is_dir() {
        return Err(Miss::Forbidden);
    }
    Ok(Found {
        path: real,
        file,
        metadata,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn prefix() -> Vec<String> {
        vec!["static".to_owned()]
    }

    fn below(raw: &str) -> Target {
        below_prefix(&prefix(), raw, true)
    }

    fn segments(raw: &str) -> Vec<String> {
        match below(raw) {
            Target::Below { segments, .. } => segments,
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn ordinary_paths_become_decoded_segments() {
        assert_eq!(segments("/static/css/site.css"), ["css", "site.css"]);
        assert_eq!(segments("/static/caf%C3%A9.txt"), ["café.txt"]);
        assert_eq!(segments("/static/a%20b.txt"), ["a b.txt"]);
        assert_eq!(
            below("/static/docs/"),
            Target::Below {
                segments: vec!["docs".into()],
                trailing_slash: true
            }
        );
        assert_eq!(
            below("/static"),
            Target::Below {
                segments: vec![],
                trailing_slash: false
            }
        );
    }

    #[test]
    fn a_path_decodes_once_only() {
        // `%252e%252e` is the literal name `%2e%2e`, not `..`.
        assert_eq!(segments("/static/%252e%252e/x"), ["%2e%2e", "x"]);
        // A door that already decoded the path does not decode it again.
        assert_eq!(
            below_prefix(&prefix(), "/static/%2e%2e", false),
            Target::Below {
                segments: vec!["%2e%2e".into()],
                trailing_slash: false
            }
        );
    }

    /// Every way of climbing out of the root, or into what is hidden, that
    /// the path alone shows. (Symlinks are checked by `open_under`.)
    pub const TRAVERSAL: &[&str] = &[
        "/static/../app.py",
        "/static/..",
        "/static/../",
        "/static/./app.py",
        "/static/.",
        "/static/css/../../app.py",
        "/static/%2e%2e/app.py",
        "/static/%2E%2e/app.py",
        "/static/%2e%2E/%2e%2e/etc/passwd",
        "/static/.%2e/app.py",
        "/static/%2e./app.py",
        "/static/%2e",
        "/static/..%2fapp.py",
        "/static/..%2Fapp.py",
        "/static/css%2f..%2f..%2fapp.py",
        "/static/..%5capp.py",
        "/static/..%5Capp.py",
        "/static/..\\app.py",
        "/static/css\\..\\..\\app.py",
        "/static/%c0%ae%c0%ae/app.py",
        "/static/%c0%ae%c0%ae%c0%afapp.py",
        "/static/%e0%80%ae%e0%80%ae/app.py",
        "/static/index.html%00.png",
        "/static/%00",
        "/static//etc/passwd",
        "/static///etc/passwd",
        "/static/css//site.css",
        "/static/.env",
        "/static/.git/config",
        "/static/css/.hidden",
        "/static/%2egit/config",
        "/static/secret.txt.",
        "/static/secret.txt%20",
        "/static/...",
        "/static/..../app.py",
        "/st%61tic%2f../app.py",
        "/static%2f..%2fapp.py",
        "static/app.py",
        "/static/%0d%0aset-cookie:x",
    ];

    #[test]
    fn every_traversal_attempt_is_refused() {
        for raw in TRAVERSAL {
            assert_eq!(below(raw), Target::Refused, "{raw}");
        }
    }

    #[test]
    fn double_encoding_is_not_a_traversal() {
        for raw in ["/static/%252e%252e/app.py", "/static/%252f"] {
            assert!(matches!(below(raw), Target::Below { .. }), "{raw}");
        }
    }

    #[test]
    fn a_root_prefix_takes_every_path() {
        assert_eq!(
            below_prefix(&[], "/a.txt", true),
            Target::Below {
                segments: vec!["a.txt".into()],
                trailing_slash: false
            }
        );
        assert_eq!(below_prefix(&[], "/../a.txt", true), Target::Refused);
    }

    #[test]
    fn globs_match_within_and_across_segments() {
        assert!(glob(b"*.bak", b"notes.bak"));
        assert!(!glob(b"*.bak", b"dir/notes.bak"));
        assert!(glob(b"**/*.bak", b"dir/sub/notes.bak"));
        assert!(glob(b"**/*.bak", b"notes.bak"));
        assert!(glob(b"private/**", b"private/a/b.txt"));
        assert!(glob(b"?.txt", b"\xc3\xa9.txt"));
        assert!(!glob(b"?.txt", b"ab.txt"));
        assert!(glob(b"secret", b"secret"));
        assert!(!glob(b"secret", b"secrets"));
    }

    #[test]
    fn hidden_names_cover_dotfiles_and_patterns() {
        let hidden = Hidden::new(vec!["*.bak".into(), "drafts/**".into(), "private".into()]);
        assert!(hidden.hides(&[".env"]));
        assert!(hidden.hides(&["css", ".cache", "x.css"]));
        assert!(hidden.hides(&["deep", "notes.bak"]));
        assert!(hidden.hides(&["drafts", "post.md"]));
        assert!(hidden.hides(&["private", "key.pem"]));
        assert!(hidden.hides(&["sub", "private"]));
        assert!(!hidden.hides(&["sub", "drafts", "post.md"]));
        assert!(!hidden.hides(&["site.css"]));
        assert!(!Hidden::default().hides(&["notes.bak"]));
    }

    /// A root with a file, a hidden file, a symlink inside and symlinks out.
    pub struct Tree {
        pub base: PathBuf,
        pub root: PathBuf,
    }

    impl Tree {
        pub fn new(name: &str) -> Tree {
            let base = std::env::temp_dir().join(format!(
                "cello-static-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&base);
            let root = base.join("root");
            std::fs::create_dir_all(root.join("css")).unwrap();
            std::fs::write(base.join("outside.txt"), "outside").unwrap();
            std::fs::write(root.join("hello.txt"), "hello").unwrap();
            std::fs::write(root.join(".secret"), "secret").unwrap();
            std::fs::write(root.join("css/site.css"), "body{}").unwrap();
            let link = |target: &Path, name: &str| {
                std::os::unix::fs::symlink(target, root.join(name)).unwrap()
            };
            link(&root.join("hello.txt"), "inside-link.txt");
            link(&base.join("outside.txt"), "outside-link.txt");
            link(Path::new("/etc"), "etc");
            link(&root.join(".secret"), "public.txt");
            let root = std::fs::canonicalize(&root).unwrap();
            Tree { base, root }
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    #[test]
    fn symlinks_are_followed_inside_the_root_only() {
        let tree = Tree::new("links");
        let hidden = Hidden::default();
        let open = |rel: &str| open_under(&tree.root, &tree.root.join(rel), &hidden);
        assert!(open("hello.txt").unwrap().metadata.is_file());
        assert!(open("css").unwrap().metadata.is_dir());
        let inside = open("inside-link.txt").unwrap();
        assert_eq!(inside.path, tree.root.join("hello.txt"));
        assert_eq!(open("outside-link.txt").err(), Some(Miss::Forbidden));
        assert_eq!(open("etc/passwd").err(), Some(Miss::Forbidden));
        assert_eq!(open("etc").err(), Some(Miss::Forbidden));
        // A public name for a hidden file is still hidden.
        assert_eq!(open("public.txt").err(), Some(Miss::Forbidden));
        assert_eq!(open("missing.txt").err(), Some(Miss::Absent));
        assert_eq!(open("hello.txt/").err(), Some(Miss::Absent));
    }

    #[test]
    fn a_fifo_is_never_opened_for_reading() {
        let tree = Tree::new("fifo");
        let fifo = tree.root.join("pipe");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let opened = open_under(&tree.root, &fifo, &Hidden::default());
        assert_eq!(opened.err(), Some(Miss::Forbidden));
    }
}
