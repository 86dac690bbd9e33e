//! The admin routes' door: which requests are ours (`ADMIN_PATH`) and never
//! the origin's or the cache's.
//!
//! The decision is made on a canonical path, read as leniently as any origin
//! server might read the same bytes, because a spelling we pass on that the
//! origin maps to its own `/_admin` would be forwarded and could be stored:
//! every `%XX` decoded (repeatedly, as double-decoding stacks do, so
//! `%255F` is `_`), `\` as `/` (IIS), `;params` cut from each segment
//! (Tomcat, Spring, Jetty), empty segments dropped (`//`), dot segments
//! resolved, trailing dots and spaces trimmed (IIS, Windows), and letters
//! compared case-insensitively (IIS, Windows file systems). A path any of
//! those readings puts under the prefix is ours: `/_ADMIN/x` included.

/// True when `path` (the request's path as received) is `admin` or below it.
pub fn is_admin_path(path: &str, admin: &str) -> bool {
    let path = canonical(path);
    let admin = canonical(admin);
    path == admin
        || path
            .strip_prefix(admin.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The canonical form described in the module doc: `/a/b`, or `/` for the root.
fn canonical(path: &str) -> String {
    let mut bytes = path.as_bytes().to_vec();
    // Each round that changes anything shortens the path, so this ends.
    for _ in 0..4 {
        let decoded = crate::normalize::percent_decode(&bytes);
        if decoded == bytes {
            break;
        }
        bytes = decoded;
    }
    let text = String::from_utf8_lossy(&bytes)
        .to_lowercase()
        .replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            _ => {
                let trimmed = segment.trim_end_matches(['.', ' ']);
                if !trimmed.is_empty() {
                    segments.push(trimmed);
                }
            }
        }
    }
    format!("/{}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_prefix_is_ours() {
        for path in [
            "/_admin",
            "/_admin/",
            "/_admin/purge",
            "/%5Fadmin/purge",
            "/%5fadmin/purge",
            "/_%61dmin/purge",
            "/%255Fadmin/purge",
            "//_admin/purge",
            "/_admin;x/purge",
            "/_admin/;/purge",
            "/_ADMIN/purge",
            "/_Admin",
            "/_admin%2Fpurge",
            "/_admin%2fpurge",
            "/_admin%5Cpurge",
            "/x/../_admin/purge",
            "/_admin/../_admin/purge",
            "/./_admin/purge",
            "/_admin./purge",
            "/_admin%20/purge",
        ] {
            assert!(is_admin_path(path, "/_admin"), "{path}");
        }
    }

    #[test]
    fn other_paths_are_not() {
        for path in [
            "/",
            "/_administrator",
            "/_admin.html",
            "/shop/_admin",
            "/_admin/../shop",
            "/admin",
            "/%5Fadmins/x",
        ] {
            assert!(!is_admin_path(path, "/_admin"), "{path}");
        }
        assert!(is_admin_path("/OPS/x", "/ops"));
    }
}
