//! A focused ESI tokenizer: the template's bytes in, a flat list of
//! [`Node`]s out, in document order.
//!
//! Why by hand and not `lol_html`: measured, `lol_html` 2 with one
//! `esi:include` handler takes the gzipped worker from 269 KB to 472 KB,
//! far past the 300 KB budget, and it is an HTML rewriter: ESI's
//! `<!--esi … -->` and `esi:remove` are not HTML constructs it can
//! express. ESI markup is a handful of tags found by a byte search for
//! `<esi:` and `<!--esi`; everything else is passed through byte for byte,
//! without being parsed as HTML at all.
//!
//! Rules (ESI Language Specification 1.0, W3C note, §3), and what is done
//! with what it does not cover:
//! - `<esi:include src="…" alt="…" onerror="continue"/>` (or with an end
//!   tag) becomes [`Node::Include`]; attribute values have HTML character
//!   references decoded (`&amp;` in a URL is `&`).
//! - `<esi:remove>…</esi:remove>` and `<esi:comment …/>` are dropped with
//!   what they hold.
//! - `<!--esi … -->`: the wrapper is dropped, what it holds is processed.
//! - `<esi:try><esi:attempt>…</esi:attempt><esi:except>…</esi:except></esi:try>`
//!   becomes [`Node::Try`].
//! - `<esi:vars>…</esi:vars>`: variables in what it holds are replaced.
//! - Any other `esi:` element (`choose`, `inline`, `assign`, …) is dropped
//!   with what it holds: output it cannot evaluate must not reach clients.
//! - Tag names compare case-insensitively. A malformed tag (no closing `>`)
//!   or an element never closed runs to the end of its template. Markup is
//!   never sent on to the client: a broken template loses its broken part,
//!   not the page.
//! - Nesting is tracked on an explicit stack, bounded by [`MAX_NESTING`],
//!   so a hostile template cannot exhaust the stack.

use std::ops::Range;

/// ESI elements nested deeper than this are dropped with their content.
pub const MAX_NESTING: usize = 32;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Bytes of the template passed through as they are.
    Text(Range<usize>),
    /// Bytes in which variables are replaced (inside `esi:vars`).
    Vars(Range<usize>),
    Include(Include),
    Try {
        attempt: Vec<Node>,
        except: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub src: String,
    pub alt: Option<String>,
    /// `onerror="continue"`: a failed include disappears.
    pub continue_on_error: bool,
}

/// The open elements while parsing.
enum Open {
    Comment,
    Vars,
    Try {
        attempt: Vec<Node>,
        except: Vec<Node>,
    },
    Attempt,
    Except,
}

/// Parses a template. Never fails: what cannot be understood is dropped.
pub fn parse(template: &[u8]) -> Vec<Node> {
    let mut parser = Parser {
        src: template,
        stack: vec![(Open::Except, Vec::new())],
        comments: 0,
        vars: 0,
    };
    parser.run();
    parser.finish()
}

struct Parser<'a> {
    src: &'a [u8],
    /// Each open element and the nodes collected inside it; the bottom is
    /// the document.
    stack: Vec<(Open, Vec<Node>)>,
    /// Open `<!--esi` and `esi:vars` elements.
    comments: usize,
    vars: usize,
}

impl Parser<'_> {
    fn nodes(&mut self) -> &mut Vec<Node> {
        &mut self
            .stack
            .last_mut()
            .expect("the document is never popped")
            .1
    }

    fn text(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        let node = match self.vars > 0 {
            true => Node::Vars(range),
            false => Node::Text(range),
        };
        self.nodes().push(node);
    }

    fn run(&mut self) {
        let src = self.src;
        let mut at = 0;
        while at < src.len() {
            let Some(start) = next_markup(src, at, self.comments > 0) else {
                self.text(at..src.len());
                return;
            };
            self.text(at..start);
            at = self.markup(start);
        }
    }

    /// Handles the markup at `start`; returns where text resumes.
    fn markup(&mut self, start: usize) -> usize {
        let src = self.src;
        let rest = &src[start..];
        if starts_with_ci(rest, b"<!--esi") {
            self.open(Open::Comment);
            return start + 7;
        }
        if rest.starts_with(b"-->") {
            self.close(|open| matches!(open, Open::Comment));
            return start + 3;
        }
        // `<esi:` or `</esi:`: up to the tag's `>`, or to the end.
        let end = find(src, start, b">").map_or(src.len(), |i| i + 1);
        let tag = &src[start..end];
        let closing = tag.starts_with(b"</");
        let name_start = if closing { 6 } else { 5 };
        let name: Vec<u8> = tag[name_start.min(tag.len())..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_')
            .map(u8::to_ascii_lowercase)
            .collect();
        let self_closing = tag.ends_with(b"/>");
        if closing {
            match name.as_slice() {
                b"vars" => self.close(|o| matches!(o, Open::Vars)),
                b"try" => self.close(|o| matches!(o, Open::Try { .. })),
                b"attempt" => self.close(|o| matches!(o, Open::Attempt)),
                b"except" => self.close(|o| matches!(o, Open::Except)),
                // include's own end tag, and those of dropped elements.
                _ => {}
            }
            return end;
        }
        match name.as_slice() {
            // A tag that never ends cannot be read: dropped.
            b"include" if !tag.ends_with(b">") => end,
            b"include" => {
                if let Some(include) = include(&tag[name_start + name.len()..]) {
                    self.nodes().push(Node::Include(include));
                }
                end
            }
            b"comment" if self_closing => end,
            b"vars" if !self_closing => {
                self.open(Open::Vars);
                end
            }
            b"try" if !self_closing => {
                self.open(Open::Try {
                    attempt: Vec::new(),
                    except: Vec::new(),
                });
                end
            }
            b"attempt" if !self_closing => {
                self.open(Open::Attempt);
                end
            }
            b"except" if !self_closing => {
                self.open(Open::Except);
                end
            }
            _ if self_closing => end,
            // `remove`, and elements not supported: dropped with their content.
            _ => skip_element(src, end, &name),
        }
    }

    /// Opens an element. Past [`MAX_NESTING`] it is still tracked, so its
    /// end tag matches, but what it holds is dropped (see `pop`).
    fn open(&mut self, open: Open) {
        match open {
            Open::Comment => self.comments += 1,
            Open::Vars => self.vars += 1,
            _ => {}
        }
        self.stack.push((open, Vec::new()));
    }

    /// Closes the innermost open element that `is` accepts, and everything
    /// opened inside it; a close with no such element is ignored.
    fn close(&mut self, is: impl Fn(&Open) -> bool) {
        let Some(depth) = self.stack.iter().skip(1).rposition(|(open, _)| is(open)) else {
            return;
        };
        while self.stack.len() > depth + 1 {
            self.pop();
        }
    }

    /// Ends the innermost element and hands what it holds to its parent.
    fn pop(&mut self) {
        let (open, nodes) = self.stack.pop().expect("never the document");
        match open {
            Open::Comment => self.comments -= 1,
            Open::Vars => self.vars -= 1,
            _ => {}
        }
        let deep = self.stack.len() > MAX_NESTING;
        let parent = self.stack.last_mut().expect("the document stays");
        if deep {
            return;
        }
        match (open, &mut parent.0) {
            (Open::Attempt, Open::Try { attempt, .. }) => attempt.extend(nodes),
            (Open::Except, Open::Try { except, .. }) => except.extend(nodes),
            // attempt and except outside a try, and anything directly in a
            // try: not ESI that means anything.
            (Open::Attempt | Open::Except, _) | (_, Open::Try { .. }) => {}
            (Open::Try { attempt, except }, _) => parent.1.push(Node::Try { attempt, except }),
            (Open::Comment | Open::Vars, _) => parent.1.extend(nodes),
        }
    }

    fn finish(mut self) -> Vec<Node> {
        while self.stack.len() > 1 {
            self.pop();
        }
        self.stack.pop().map(|(_, nodes)| nodes).unwrap_or_default()
    }
}

/// Where the next markup starts at or after `at`: `<esi:`, `</esi:`,
/// `<!--esi`, or (inside `<!--esi`) the `-->` that ends it.
fn next_markup(src: &[u8], at: usize, in_comment: bool) -> Option<usize> {
    // One pass over the bytes: each candidate is checked where it stands.
    (at..src.len()).find(|&i| {
        let rest = &src[i..];
        match rest[0] {
            b'<' => {
                starts_with_ci(rest, b"<esi:")
                    || starts_with_ci(rest, b"</esi:")
                    || starts_with_ci(rest, b"<!--esi")
            }
            b'-' => in_comment && rest.starts_with(b"-->"),
            _ => false,
        }
    })
}

/// Past the end tag of the element `name` whose start tag ends at `from`
/// (nested elements of the same name counted), or the end of the template.
fn skip_element(src: &[u8], from: usize, name: &[u8]) -> usize {
    let open: Vec<u8> = [b"<esi:".as_slice(), name].concat();
    let close: Vec<u8> = [b"</esi:".as_slice(), name].concat();
    let (mut depth, mut at) = (1usize, from);
    while let Some(i) = memchr(src, at, b'<') {
        let rest = &src[i..];
        if starts_with_ci(rest, &close) {
            depth -= 1;
            let end = find(src, i, b">").map_or(src.len(), |e| e + 1);
            if depth == 0 {
                return end;
            }
            at = end;
        } else {
            if starts_with_ci(rest, &open)
                && rest
                    .get(open.len())
                    .is_some_and(|b| !b.is_ascii_alphanumeric())
            {
                depth += 1;
            }
            at = i + 1;
        }
    }
    src.len()
}

/// The include's attributes; `None` without a `src`.
fn include(attributes: &[u8]) -> Option<Include> {
    let mut include = Include {
        src: String::new(),
        alt: None,
        continue_on_error: false,
    };
    for (name, value) in attributes_of(attributes) {
        match name.as_str() {
            "src" => include.src = value,
            "alt" => include.alt = Some(value),
            "onerror" => include.continue_on_error = value.eq_ignore_ascii_case("continue"),
            _ => {}
        }
    }
    (!include.src.is_empty()).then_some(include)
}

/// `name="value"`, `name='value'` and `name=value` pairs, names lower-case,
/// values with character references decoded.
fn attributes_of(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, c)) = chars.peek() {
            if !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':') {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let name = text[start..end].to_ascii_lowercase();
        while chars.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().map(|&(_, c)| c) != Some('=') {
            continue;
        }
        chars.next();
        while chars.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let quote = match chars.peek() {
            Some(&(_, q @ ('"' | '\''))) => {
                chars.next();
                Some(q)
            }
            _ => None,
        };
        let mut value = String::new();
        for (_, c) in chars.by_ref() {
            match quote {
                Some(q) if c == q => break,
                None if c.is_whitespace() || c == '>' => break,
                _ => value.push(c),
            }
        }
        out.push((name, decode_references(&value)));
    }
    out
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;` and numeric references.
fn decode_references(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let number = name.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn memchr(src: &[u8], from: usize, byte: u8) -> Option<usize> {
    src.get(from..)?
        .iter()
        .position(|b| *b == byte)
        .map(|i| from + i)
}

fn find(src: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    src.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

fn starts_with_ci(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The template with includes shown as `[src|alt|c]` and tries as
    /// `{attempt|except}`, vars text as `$[…]`.
    fn show(template: &str) -> String {
        fn render(src: &str, nodes: &[Node], out: &mut String) {
            for node in nodes {
                match node {
                    Node::Text(r) => out.push_str(&src[r.clone()]),
                    Node::Vars(r) => {
                        out.push_str("$[");
                        out.push_str(&src[r.clone()]);
                        out.push(']');
                    }
                    Node::Include(i) => {
                        let alt = i.alt.as_deref().unwrap_or("");
                        let c = if i.continue_on_error { "c" } else { "" };
                        out.push_str(&format!("[{}|{alt}|{c}]", i.src));
                    }
                    Node::Try { attempt, except } => {
                        out.push('{');
                        render(src, attempt, out);
                        out.push('|');
                        render(src, except, out);
                        out.push('}');
                    }
                }
            }
        }
        let mut out = String::new();
        render(template, &parse(template.as_bytes()), &mut out);
        out
    }

    #[test]
    fn the_supported_elements() {
        let cases = [
            ("plain <b>html</b> & text", "plain <b>html</b> & text"),
            (r#"a<esi:include src="/f?a=1&amp;b=2"/>b"#, "a[/f?a=1&b=2||]b"),
            (r#"<ESI:Include SRC='/f' alt=/g onerror="continue"></esi:include>"#, "[/f|/g|c]"),
            ("a<esi:remove>secret <esi:include src=\"/x\"/></esi:remove>b", "ab"),
            ("a<esi:comment text=\"note\"/>b", "ab"),
            ("a<!--esi <esi:include src=\"/f\"/> x -->b", "a [/f||] x b"),
            ("<!-- plain comment -->", "<!-- plain comment -->"),
            (
                "<esi:try><esi:attempt>A<esi:include src=\"/a\"/></esi:attempt><esi:except>E</esi:except></esi:try>",
                "{A[/a||]|E}",
            ),
            ("<esi:vars>Hi $(HTTP_HOST)</esi:vars>!", "$[Hi $(HTTP_HOST)]!"),
            ("a<esi:choose><esi:when test=\"1\">W</esi:when></esi:choose>b", "ab"),
            ("a<esi:inline name=\"x\">I</esi:inline>b<esi:assign name=\"v\" value=\"1\"/>c", "abc"),
        ];
        for (template, want) in cases {
            assert_eq!(show(template), want, "{template}");
        }
    }

    #[test]
    fn malformed_markup_never_leaks() {
        let cases = [
            ("a<esi:include src=\"/f\"", "a"),
            ("a<esi:remove>never closed", "a"),
            ("a<!--esi b", "a b"),
            ("a</esi:try>b</esi:vars>c", "abc"),
            ("a<esi:include/>b", "ab"),
            ("a<esi:attempt>x</esi:attempt>b", "ab"),
            (
                "<esi:try>direct text<esi:attempt>A</esi:attempt></esi:try>",
                "{A|}",
            ),
            (
                "a <esi:choose><esi:choose>x</esi:choose> y</esi:choose> b",
                "a  b",
            ),
            (
                "x < y and <esi but not a tag",
                "x < y and <esi but not a tag",
            ),
        ];
        for (template, want) in cases {
            let got = show(template);
            assert_eq!(got, want, "{template}");
            assert!(!got.to_ascii_lowercase().contains("<esi:"), "{template}");
        }
    }

    #[test]
    fn hostile_templates_stay_bounded() {
        let deep = "<esi:try><esi:attempt>".repeat(20_000) + "x";
        assert!(!show(&deep).contains("esi:"));
        let many = "<esi:include src=\"/f\"/>".repeat(5_000);
        assert_eq!(parse(many.as_bytes()).len(), 5_000);
        // Past MAX_NESTING what an element holds is dropped, markup and all.
        let comments = "<!--esi ".repeat(10_000) + "x" + &" -->".repeat(10_000);
        let out = show(&comments);
        assert!(!out.contains("esi") && !out.contains("-->") && !out.contains('x'));
        let shallow = "<!--esi ".repeat(3) + "x" + &" -->".repeat(3);
        assert_eq!(show(&shallow).trim(), "x");
    }
}
