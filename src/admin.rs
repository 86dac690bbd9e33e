//! The admin routes' door: which requests are ours (`ADMIN_PATH`) and never
//! the origin's or the cache's.
//!
//! The decision is made on [`lenient_path`], the path read as leniently as
//! any origin server might read the same bytes, because a spelling we pass
//! on that the origin maps to its own `/_admin` would be forwarded and could
//! be stored. A path any of those readings puts under the prefix is ours:
//! `/%5Fadmin/x`, `/_ADMIN/x` and `/_admin;x/y` included.

use crate::normalize::lenient_path;

/// True when `path` (the request's path as received) is `admin` or below it.
pub fn is_admin_path(path: &str, admin: &str) -> bool {
    let path = lenient_path(path);
    let admin = lenient_path(admin);
    path == admin
        || path
            .strip_prefix(admin.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
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
            "/_admin%09/x",
            "/_admin%00/x",
            "/_admin%0a/x",
            "/_admin%3f/x",
            "/_admin%23/x",
            "/_adm%C4%B1n/x",
            "/%EF%BC%BFadmin/x",
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
