//! The admin routes' door: which requests are ours (`ADMIN_PATH`) and never
//! the origin's or the cache's.
//!
//! The decision is made on [`lenient_path`], the path read as leniently as
//! any origin server might read the same bytes, because a spelling we pass
//! on that the origin maps to its own `/_admin` would be forwarded and could
//! be stored. A path any of those readings puts under the prefix is ours:
//! `/%5Fadmin/x`, `/_ADMIN/x` and `/_admin;x/y` included.
//!
//! Children: `api` reads the API's requests, `auth` checks the bearer
//! token, `page` is the admin page. The routes themselves, which reach
//! storage, KV and the origin, live in `proxy::admin_routes`.

pub mod api;
pub mod auth;
pub mod page;

use crate::normalize::lenient_path;

/// The route below the admin prefix that a path names (`/purge`, `/`), in
/// its lenient form; `None` when the path is not under the prefix.
pub fn route(path: &str, admin: &str) -> Option<String> {
    let path = lenient_path(path);
    let admin = lenient_path(admin);
    match path.strip_prefix(admin.as_str())? {
        "" => Some("/".into()),
        rest if rest.starts_with('/') => Some(rest.into()),
        _ => None,
    }
}

/// True when `path` (the request's path as received) is `admin` or below it.
pub fn is_admin_path(path: &str, admin: &str) -> bool {
    route(path, admin).is_some()
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
            "/%u005Fadmin/purges",
            "/%25u005Fadmin/purges",
            "/_admin%u002Fpurges",
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

    #[test]
    fn routes_below_the_prefix() {
        assert_eq!(route("/_admin", "/_admin").as_deref(), Some("/"));
        assert_eq!(route("/_admin/", "/_admin").as_deref(), Some("/"));
        assert_eq!(
            route("/%5Fadmin/PURGE", "/_admin").as_deref(),
            Some("/purge")
        );
        assert_eq!(route("/_adminx", "/_admin"), None);
    }
}
