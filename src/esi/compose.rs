//! Composition: a parsed template and its includes' fetches in, the page's
//! bytes out, in document order, each part as soon as everything before it
//! is ready.
//!
//! Every distinct include is fetched once, all at once: the [`Composer`]
//! polls every fetch whenever it is asked for the next chunk, so they run
//! in parallel while the page streams. An include that fails takes its
//! `alt` (inside the fetch), then disappears with `onerror="continue"`,
//! then fails its `esi:try`'s attempt (the `except` is used instead), and
//! at the top level fails the page: before its head is sent that is a 502,
//! after it the stream breaks off, so a client never takes a partial page
//! for a whole one.

use super::parse::{Include, Node};
use super::vars::{Context, Variables};
use crate::cache_control::Directives;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

/// The composed page stops (breaks off) past this many bytes.
pub const MAX_OUTPUT: usize = 32 * 1024 * 1024;
/// The size past which a chunk of the page goes out (see `next_chunk`).
const CHUNK_BYTES: usize = 64 * 1024;

/// What the client may do with a response, reduced to what combining
/// needs: the composed page gets the most restrictive of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub no_store: bool,
    pub private: bool,
    pub no_cache: bool,
    /// Seconds; a part without `max-age` counts as 0.
    pub max_age: u64,
}

impl Lifetime {
    /// From a response's (client-facing) `Cache-Control`.
    pub fn of(cache_control: Option<&Directives>) -> Self {
        let has = |name| cache_control.is_some_and(|d| d.has(name));
        Lifetime {
            no_store: has("no-store"),
            private: has("private"),
            no_cache: has("no-cache"),
            max_age: cache_control
                .and_then(|d| d.seconds("max-age"))
                .unwrap_or(0),
        }
    }

    /// A part whose head was not known in time: nothing may be assumed.
    pub const UNKNOWN: Lifetime = Lifetime {
        no_store: true,
        private: true,
        no_cache: true,
        max_age: 0,
    };

    pub fn and(self, other: Lifetime) -> Lifetime {
        Lifetime {
            no_store: self.no_store || other.no_store,
            private: self.private || other.private,
            no_cache: self.no_cache || other.no_cache,
            max_age: self.max_age.min(other.max_age),
        }
    }

    /// The `Cache-Control` value.
    pub fn header(self) -> String {
        let mut parts = Vec::new();
        if self.private {
            parts.push("private".to_string());
        }
        if self.no_store {
            parts.push("no-store".to_string());
        } else {
            if self.no_cache {
                parts.push("no-cache".to_string());
            }
            parts.push(format!("max-age={}", self.max_age));
        }
        parts.join(", ")
    }
}

/// What an include fetched.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub body: Rc<Vec<u8>>,
    pub lifetime: Lifetime,
    /// Served from cache.
    pub hit: bool,
}

pub type Fetched = Result<Fragment, String>;
pub type Fetch = Pin<Box<dyn Future<Output = Fetched>>>;

/// A template piece with its includes resolved to fetches.
enum Piece {
    Text(Vec<u8>),
    Include {
        /// Index of its fetch, or why it was refused without one.
        fetch: Result<usize, String>,
        continue_on_error: bool,
    },
    Try {
        attempt: Vec<Piece>,
        except: Vec<Piece>,
    },
}

/// Resolves an include (variables already substituted in `src` and `alt`)
/// to the index of its fetch, or refuses it.
pub trait Resolve {
    fn resolve(&mut self, include: &Include) -> Result<usize, String>;
}

/// A page being composed.
pub struct Composer {
    pieces: Vec<Piece>,
    next: usize,
    fetches: Vec<Option<Fetch>>,
    results: Vec<Option<Fetched>>,
    written: usize,
}

impl Composer {
    /// Plans `nodes` of `template`: variables substituted, includes resolved
    /// through `resolve`, which makes the fetches; hand them over with
    /// [`Composer::set_fetches`], by the indices it returned.
    pub fn new(
        template: &[u8],
        nodes: &[Node],
        variables: &Variables,
        resolve: &mut impl Resolve,
    ) -> Self {
        Composer {
            pieces: plan(template, nodes, variables, resolve),
            next: 0,
            fetches: Vec::new(),
            results: Vec::new(),
            written: 0,
        }
    }

    pub fn set_fetches(&mut self, fetches: Vec<Fetch>) {
        self.results = fetches.iter().map(|_| None).collect();
        self.fetches = fetches.into_iter().map(Some).collect();
    }

    /// Polls every fetch still running; true when none is.
    fn poll_fetches(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let mut done = true;
        for (slot, result) in self.fetches.iter_mut().zip(self.results.iter_mut()) {
            if let Some(fetch) = slot {
                match fetch.as_mut().poll(cx) {
                    Poll::Ready(fetched) => {
                        *result = Some(fetched);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        done
    }

    /// Runs the fetches until all have answered or `grace` completes.
    pub async fn settle_within(&mut self, grace: impl Future<Output = ()>) {
        let mut grace = std::pin::pin!(grace);
        std::future::poll_fn(|cx| {
            if self.poll_fetches(cx) || grace.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await
    }

    /// The page's parts known so far: the combined lifetime (a part not yet
    /// known counts as [`Lifetime::UNKNOWN`]), the number of distinct
    /// fragments, and how many were cache hits.
    pub fn known(&self) -> (Lifetime, usize, usize) {
        let mut lifetime: Option<Lifetime> = None;
        let mut hits = 0;
        for result in &self.results {
            let part = match result {
                Some(Ok(fragment)) => {
                    hits += usize::from(fragment.hit);
                    fragment.lifetime
                }
                // A failed part adds no content, so nothing to its lifetime.
                Some(Err(_)) => continue,
                None => Lifetime::UNKNOWN,
            };
            lifetime = Some(lifetime.map_or(part, |l| l.and(part)));
        }
        (
            lifetime.unwrap_or(Lifetime::of(None)),
            self.results.len(),
            hits,
        )
    }

    /// Whether a top-level include that must not fail already has.
    pub fn failed(&self) -> Option<String> {
        self.pieces
            .iter()
            .find_map(|piece| failure(piece, &self.results))
    }

    /// The next bytes of the page: `None` at its end, an error where it
    /// breaks off.
    pub async fn next_chunk(&mut self) -> Option<Result<Vec<u8>, String>> {
        std::future::poll_fn(|cx| {
            self.poll_fetches(cx);
            let mut chunk = Vec::new();
            // A chunk ends once it passes CHUNK_BYTES: each is written when
            // the client has taken the last, so a client that reads slowly
            // holds a chunk of the page, not all of it.
            while self.next < self.pieces.len() && chunk.len() < CHUNK_BYTES {
                match render(&self.pieces[self.next], &self.results) {
                    None => break,
                    Some(Ok(bytes)) => {
                        chunk.extend_from_slice(&bytes);
                        self.next += 1;
                    }
                    // What came before goes out first.
                    Some(Err(_)) if !chunk.is_empty() => break,
                    Some(Err(why)) => {
                        self.next = self.pieces.len();
                        return Poll::Ready(Some(Err(why)));
                    }
                }
            }
            self.written += chunk.len();
            if self.written > MAX_OUTPUT {
                self.next = self.pieces.len();
                return Poll::Ready(Some(Err(format!(
                    "the composed page is over {MAX_OUTPUT} bytes"
                ))));
            }
            match (chunk.is_empty(), self.next == self.pieces.len()) {
                (false, _) => Poll::Ready(Some(Ok(chunk))),
                (true, true) => Poll::Ready(None),
                (true, false) => Poll::Pending,
            }
        })
        .await
    }
}

fn plan(
    template: &[u8],
    nodes: &[Node],
    variables: &Variables,
    resolve: &mut impl Resolve,
) -> Vec<Piece> {
    nodes
        .iter()
        .map(|node| match node {
            Node::Text(range) => Piece::Text(template[range.clone()].to_vec()),
            Node::Vars(range) => {
                let text = String::from_utf8_lossy(&template[range.clone()]);
                Piece::Text(variables.substitute(&text, Context::Html).into_bytes())
            }
            Node::Include(include) => {
                let include = Include {
                    src: variables.substitute(&include.src, Context::Url),
                    alt: include
                        .alt
                        .as_ref()
                        .map(|alt| variables.substitute(alt, Context::Url)),
                    continue_on_error: include.continue_on_error,
                };
                Piece::Include {
                    fetch: resolve.resolve(&include),
                    continue_on_error: include.continue_on_error,
                }
            }
            Node::Try { attempt, except } => Piece::Try {
                attempt: plan(template, attempt, variables, resolve),
                except: plan(template, except, variables, resolve),
            },
        })
        .collect()
}

/// A piece's bytes once every fetch it needs has answered.
fn render(piece: &Piece, results: &[Option<Fetched>]) -> Option<Result<Vec<u8>, String>> {
    match piece {
        Piece::Text(bytes) => Some(Ok(bytes.clone())),
        Piece::Include {
            fetch,
            continue_on_error,
        } => {
            let fetched = match fetch {
                Ok(i) => results[*i].as_ref()?.clone().map(|f| f.body.to_vec()),
                Err(why) => Err(why.clone()),
            };
            Some(match (fetched, continue_on_error) {
                (Err(_), true) => Ok(Vec::new()),
                (other, _) => other,
            })
        }
        Piece::Try { attempt, except } => match render_all(attempt, results)? {
            Ok(bytes) => Some(Ok(bytes)),
            Err(_) => render_all(except, results),
        },
    }
}

/// Why `piece` is known to fail the page by now: a required include that
/// failed, or an `esi:try` whose attempt failed and whose except fails too.
fn failure(piece: &Piece, results: &[Option<Fetched>]) -> Option<String> {
    match piece {
        Piece::Text(_) => None,
        Piece::Include {
            fetch,
            continue_on_error: false,
        } => match fetch {
            Err(why) => Some(why.clone()),
            Ok(i) => match &results[*i] {
                Some(Err(why)) => Some(why.clone()),
                _ => None,
            },
        },
        Piece::Include { .. } => None,
        Piece::Try { attempt, except } => attempt
            .iter()
            .find_map(|p| failure(p, results))
            .and_then(|_| except.iter().find_map(|p| failure(p, results))),
    }
}

/// Pieces rendered one after another: `None` until all are ready, the
/// first error if any failed.
fn render_all(pieces: &[Piece], results: &[Option<Fetched>]) -> Option<Result<Vec<u8>, String>> {
    let parts = pieces
        .iter()
        .map(|p| render(p, results))
        .collect::<Option<Vec<_>>>()?;
    Some(
        parts
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map(|p| p.concat()),
    )
}

impl crate::platform::Chunks for Composer {
    fn next_chunk(
        &mut self,
    ) -> Pin<Box<dyn Future<Output = Option<Result<Vec<u8>, String>>> + '_>> {
        Box::pin(Composer::next_chunk(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esi::parse::parse;
    use std::collections::HashMap;

    /// Resolves each distinct src to one fetch; `refuse` is refused.
    #[derive(Default)]
    struct Table(HashMap<String, usize>);

    impl Resolve for Table {
        fn resolve(&mut self, include: &Include) -> Result<usize, String> {
            if include.src.contains("refuse") {
                return Err(format!("{} is not allowed", include.src));
            }
            let next = self.0.len();
            Ok(*self.0.entry(include.src.clone()).or_insert(next))
        }
    }

    fn fragment(body: &str, max_age: u64) -> Fetched {
        Ok(Fragment {
            body: Rc::new(body.as_bytes().to_vec()),
            lifetime: Lifetime {
                max_age,
                ..Lifetime::of(None)
            },
            hit: true,
        })
    }

    /// Composes `template` with fetches answered from `answers` (by src).
    fn compose(
        template: &str,
        answers: &[(&str, Fetched)],
    ) -> (Vec<Result<Vec<u8>, String>>, Composer) {
        let mut table = Table::default();
        let nodes = parse(template.as_bytes());
        let variables = Variables {
            host: "shop.test".into(),
            ..Variables::default()
        };
        let mut composer = Composer::new(template.as_bytes(), &nodes, &variables, &mut table);
        let mut by_index: Vec<(usize, String)> =
            table.0.iter().map(|(s, i)| (*i, s.clone())).collect();
        by_index.sort();
        composer.set_fetches(
            by_index
                .iter()
                .map(|(_, src)| {
                    let answer = answers
                        .iter()
                        .find(|(s, _)| s == src)
                        .map(|(_, a)| a.clone())
                        .unwrap_or(Err(format!("{src} answered 404")));
                    Box::pin(async move { answer }) as Fetch
                })
                .collect(),
        );
        let mut chunks = Vec::new();
        futures::executor::block_on(async {
            while let Some(chunk) = composer.next_chunk().await {
                chunks.push(chunk);
            }
        });
        (chunks, composer)
    }

    fn page(chunks: &[Result<Vec<u8>, String>]) -> String {
        chunks
            .iter()
            .map(|c| match c {
                Ok(b) => String::from_utf8_lossy(b).into_owned(),
                Err(e) => format!("<<{e}>>"),
            })
            .collect()
    }

    #[test]
    fn includes_in_order_with_alt_continue_and_try() {
        let template = r#"<h1><esi:include src="/a"/></h1><esi:include src="/gone" onerror="continue"/>|<esi:try><esi:attempt><esi:include src="/gone"/></esi:attempt><esi:except>fallback</esi:except></esi:try>|<esi:vars>$(HTTP_HOST)</esi:vars>|<esi:include src="/a"/>"#;
        let (chunks, composer) = compose(template, &[("/a", fragment("A", 60))]);
        assert_eq!(page(&chunks), "<h1>A</h1>|fallback|shop.test|A");
        let (lifetime, fragments, hits) = composer.known();
        assert_eq!((fragments, hits), (2, 1), "/a fetched once");
        assert_eq!(lifetime.header(), "max-age=60");
    }

    #[test]
    fn a_required_include_that_fails_breaks_the_page_off() {
        let (chunks, composer) = compose("before<esi:include src=\"/gone\"/>after", &[]);
        assert_eq!(page(&chunks), "before<</gone answered 404>>");
        assert_eq!(composer.failed().as_deref(), Some("/gone answered 404"));
        let (chunks, _) = compose("a<esi:include src=\"/refuse\" onerror=\"continue\"/>b", &[]);
        assert_eq!(page(&chunks), "ab");
        // A try whose attempt and except both fail fails the page too.
        let template = r#"top<esi:try><esi:attempt><esi:include src="/gone"/></esi:attempt><esi:except><esi:include src="/gone2"/></esi:except></esi:try>end"#;
        let (_, composer) = compose(template, &[]);
        assert_eq!(composer.failed().as_deref(), Some("/gone2 answered 404"));
        let rescued = r#"<esi:try><esi:attempt><esi:include src="/gone"/></esi:attempt><esi:except>x</esi:except></esi:try>"#;
        assert_eq!(compose(rescued, &[]).1.failed(), None);
    }

    #[test]
    fn the_most_restrictive_lifetime_wins() {
        let a = Lifetime::of(Some(&Directives::parse("max-age=600")));
        let b = Lifetime::of(Some(&Directives::parse("private, max-age=60")));
        assert_eq!(a.and(b).header(), "private, max-age=60");
        assert_eq!(a.and(Lifetime::UNKNOWN).header(), "private, no-store");
        assert_eq!(a.and(Lifetime::of(None)).header(), "max-age=0");
    }
}
