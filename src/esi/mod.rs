//! Edge Side Includes: pages composed at the edge from cached fragments
//! (ESI Language Specification 1.0, W3C note).
//!
//! `parse` turns a template into nodes. The stored page is the template,
//! unprocessed; composition happens per request, so purging a fragment
//! changes every page that includes it while the template stays cached.

pub mod compose;
pub mod parse;
pub mod vars;
