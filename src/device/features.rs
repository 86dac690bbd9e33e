//! The features the device model reads from a request: hashed indices into
//! its weight table, the same for training and for classifying, so the two
//! can never disagree about what an agent looks like.
//!
//! - the `Sec-CH-UA-Mobile` hint;
//! - every word of the agent (runs of letters and digits, pure numbers such as
//!   version parts left out): browsers, platforms and apps (`ipad`, `tablet`,
//!   `smart-tv` → `smart`, `tv`, `silk`, `crkey` …);
//! - the device model of an Android agent (`SM-T510`, `Lenovo TB-X605F`):
//!   its words, their first two to four characters, and its character 2- to
//!   5-grams, anchored with `^` and `$`.
//!   The n-grams are what generalise to models never seen: `^sm-t` is a
//!   Samsung tablet and `tb-x` a Lenovo one, whatever digits follow, and
//!   screen sizes (`10.1`, `7 `) and words such as `box` or `pad` recur
//!   across brands.
//!
//! Feature hashing (FNV-1a, [`TABLE_BITS`] bits) keeps the model a flat array
//! with no vocabulary to ship; collisions cost a little accuracy, measured in
//! `super::tests`.

/// log2 of the number of weight rows.
pub const TABLE_BITS: u32 = 15;
/// Number of weight rows.
pub const TABLE_SIZE: usize = 1 << TABLE_BITS;

/// Kinds of feature, hashed in front of the text so that the word `tab` and
/// the model n-gram `tab` are different features.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Kind {
    Bias = b'b',
    Hint = b'h',
    Word = b'w',
    ModelWord = b'n',
    ModelPrefix = b'p',
    ModelGram = b'm',
}

/// Calls `emit` with the row of every feature of `agent` (lower-cased) and
/// the hint's raw value.
pub fn features(agent: &str, hint: Option<&str>, mut emit: impl FnMut(usize)) {
    emit(row(Kind::Bias, b""));
    emit(row(Kind::Hint, hint.unwrap_or("").trim().as_bytes()));
    for word in words(agent) {
        if !word.bytes().all(|b| b.is_ascii_digit()) {
            emit(row(Kind::Word, word.as_bytes()));
        }
    }
    if let Some(model) = android_model(agent) {
        for word in words(model) {
            emit(row(Kind::ModelWord, word.as_bytes()));
            for n in 2..word.len().min(5) {
                emit(row(Kind::ModelPrefix, &word.as_bytes()[..n]));
            }
        }
        let anchored = [b"^", model.as_bytes(), b"$"].concat();
        for n in 2..=5 {
            for gram in anchored.windows(n) {
                emit(row(Kind::ModelGram, gram));
            }
        }
    }
}

/// Runs of ASCII letters and digits (other bytes, UTF-8 included, separate them).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// The device model in an Android agent: the first segment after
/// `Android x.y;` that is not `U`, `arm_64` or a locale, up to ` Build/`.
pub(super) fn android_model(agent: &str) -> Option<&str> {
    let rest = &agent[agent.find("android")? + "android".len()..];
    let rest = rest.split_once(';')?.1;
    rest.split(';')
        .map(|segment| segment.split(')').next().unwrap_or("").trim())
        .find(|segment| {
            let locale = segment.len() == 5 && matches!(segment.as_bytes()[2], b'-' | b'_');
            !segment.is_empty() && !matches!(*segment, "u" | "arm_64" | "arm") && !locale
        })
        .map(|model| model.split(" build/").next().unwrap_or(model))
}

/// FNV-1a of the kind and the text, folded to a row.
fn row(kind: Kind, text: &[u8]) -> usize {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let hash = std::iter::once(kind as u8)
        .chain(text.iter().copied())
        .fold(OFFSET, |h, b| (h ^ u32::from(b)).wrapping_mul(PRIME));
    (hash as usize) & (TABLE_SIZE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(agent: &str, hint: Option<&str>) -> Vec<usize> {
        let mut out = Vec::new();
        features(agent, hint, |r| out.push(r));
        out
    }

    #[test]
    fn android_model_is_the_segment_before_build() {
        let agent =
            "mozilla/5.0 (linux; u; android 4.2.2; ru-ru; bravis_slim_3g build/jdq39) applewebkit";
        assert_eq!(android_model(agent), Some("bravis_slim_3g"));
        let agent = "mozilla/5.0 (linux; arm_64; android 13; sm-x200) applewebkit";
        assert_eq!(android_model(agent), Some("sm-x200"));
        assert_eq!(android_model("mozilla/5.0 (linux; android 10)"), None);
        assert_eq!(android_model("mozilla/5.0 (windows nt 10.0)"), None);
    }

    #[test]
    fn version_numbers_do_not_matter_and_kinds_stay_apart() {
        // Version numbers do not change the features; the hint does.
        assert_eq!(
            rows("chrome/120.0 safari", None),
            rows("chrome/99.1 safari", None)
        );
        assert_ne!(
            rows("chrome safari", None),
            rows("chrome safari", Some("?0"))
        );
        // A word and a model n-gram with the same text are different rows.
        assert_ne!(row(Kind::Word, b"tab"), row(Kind::ModelGram, b"tab"));
        assert!(rows("android 9; x", None).iter().all(|r| *r < TABLE_SIZE));
    }
}
