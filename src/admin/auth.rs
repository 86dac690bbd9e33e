//! The admin API's bearer token (`Authorization: Bearer <ADMIN_TOKEN>`,
//! RFC 6750). Compared as SHA-256 digests in constant time: neither the
//! token's length nor how much of a guess matched shows in the timing.

use http::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};

/// Whether `request` carries `token` as its bearer token.
pub fn authorized(request: &HeaderMap, token: &str) -> bool {
    let Some(given) = request
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim())
    else {
        return false;
    };
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(token.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |diff, (x, y)| diff | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::header_map;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let token = "0123456789abcdef-secret";
        let with = |value: &str| authorized(&header_map(&[("authorization", value)]), token);
        assert!(with("Bearer 0123456789abcdef-secret"));
        assert!(with("bearer  0123456789abcdef-secret "));
        assert!(!with("Bearer 0123456789abcdef-secre"));
        assert!(!with("Bearer 0123456789abcdef-secretx"));
        assert!(!with("Basic 0123456789abcdef-secret"));
        assert!(!with("0123456789abcdef-secret"));
        assert!(!with("Bearer"));
        assert!(!authorized(&HeaderMap::new(), token));
    }
}
