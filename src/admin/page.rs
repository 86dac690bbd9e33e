//! The admin page (`www/_admin/`), built into the worker: it is served under
//! `ADMIN_PATH` whatever the origin is, and never from the origin or the
//! cache. It holds no secret; the token is typed into it and kept in the
//! tab's `sessionStorage`. A strict Content-Security-Policy lets it load
//! only its own script and style and talk only to this site.

/// A file of the page: body and content type.
pub struct Asset {
    pub body: &'static str,
    pub content_type: &'static str,
}

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's file for a route below the admin prefix (lenient form).
pub fn asset(route: &str) -> Option<Asset> {
    let (body, content_type) = match route {
        "/" | "/index.html" => (
            include_str!("../../www/_admin/index.html"),
            "text/html; charset=utf-8",
        ),
        "/admin.js" => (
            include_str!("../../www/_admin/admin.js"),
            "text/javascript; charset=utf-8",
        ),
        "/admin.css" => (
            include_str!("../../www/_admin/admin.css"),
            "text/css; charset=utf-8",
        ),
        _ => return None,
    };
    Some(Asset { body, content_type })
}
