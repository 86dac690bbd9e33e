//! Bodies stay JS streams: the hit path hands the Cache API's stream to the
//! client without copying it through wasm memory.

use super::task::settled;
use crate::platform::{Body, Buffered, Exceeded, PlatformError, ReadLimit};
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{ReadableStream, ReadableStreamDefaultReader};

pub enum EdgeBody {
    Empty,
    Bytes(Vec<u8>),
    Stream(ReadableStream),
    /// A whole body read on the JS side (see [`Body::buffered`]); it never
    /// enters wasm memory, whose growth is for the isolate's life.
    Buffer(ArrayBuffer),
    /// The body of a Cache API response, still in it. Sent on as it is,
    /// the client's response is made from the stored one with only the
    /// fields the core changed (`convert::response_to_js`); anything that
    /// reads or splits it sees a stream.
    Stored(Box<Stored>),
}

/// A stored response and its head as the core first saw it.
pub struct Stored {
    pub response: web_sys::Response,
    pub headers: std::rc::Rc<http::HeaderMap>,
}

impl EdgeBody {
    pub fn from_stream(stream: Option<ReadableStream>) -> Self {
        stream.map_or(EdgeBody::Empty, EdgeBody::Stream)
    }

    /// The same body as a plain stream.
    pub fn unstored(self) -> Self {
        match self {
            EdgeBody::Stored(stored) => EdgeBody::from_stream(stored.response.body()),
            plain => plain,
        }
    }
}

impl Body for EdgeBody {
    fn empty() -> Self {
        EdgeBody::Empty
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        EdgeBody::Bytes(bytes)
    }

    fn tee(self) -> (Self, Self) {
        match self.unstored() {
            EdgeBody::Empty => (EdgeBody::Empty, EdgeBody::Empty),
            EdgeBody::Bytes(b) => (EdgeBody::Bytes(b.clone()), EdgeBody::Bytes(b)),
            // Both halves only read it.
            EdgeBody::Buffer(b) => (EdgeBody::Buffer(b.clone()), EdgeBody::Buffer(b)),
            EdgeBody::Stream(s) => {
                let pair = s.tee();
                (
                    EdgeBody::Stream(pair.get(0).unchecked_into()),
                    EdgeBody::Stream(pair.get(1).unchecked_into()),
                )
            }
            EdgeBody::Stored(_) => unreachable!("unstored above"),
        }
    }

    async fn buffered(self, limit: ReadLimit) -> Result<Buffered<Self>, PlatformError> {
        let this = self.unstored();
        let length = match this {
            EdgeBody::Empty => 0,
            EdgeBody::Bytes(ref b) => b.len() as u64,
            EdgeBody::Buffer(ref b) => u64::from(b.byte_length()),
            // No limit, nothing to pass on: one read, no spare half.
            EdgeBody::Stream(s) if limit == ReadLimit::NONE => {
                let buffer = read_all(s).await?;
                let length = u64::from(buffer.byte_length());
                return Ok(Buffered::Whole(EdgeBody::Buffer(buffer), length));
            }
            EdgeBody::Stream(_) => return read_within(this, limit).await,
            EdgeBody::Stored(_) => unreachable!("unstored above"),
        };
        Ok(match length > limit.bytes {
            true => Buffered::PassOn(this, Exceeded::Bytes),
            false => Buffered::Whole(this, length),
        })
    }

    /// Cut JS-side, never through wasm memory; a stream is read chunk by
    /// chunk up to `end`, keeping only the bytes in range.
    async fn range(self, start: u64, end: u64) -> Result<Self, PlatformError> {
        let short = || PlatformError("the stored body ended before the range".into());
        let (first, last) = (start as usize, end as usize + 1);
        match self.unstored() {
            EdgeBody::Buffer(b) if u64::from(b.byte_length()) > end => Ok(EdgeBody::Buffer(
                b.slice_with_end(first as u32, last as u32),
            )),
            EdgeBody::Bytes(b) => b
                .get(first..last)
                .map(|r| EdgeBody::Bytes(r.to_vec()))
                .ok_or_else(short),
            EdgeBody::Stream(s) => read_range(s, start, end).await,
            EdgeBody::Buffer(_) | EdgeBody::Empty => Err(short()),
            EdgeBody::Stored(_) => unreachable!("unstored above"),
        }
    }

    /// A `TransformStream`: its readable side is the body, and a task the
    /// request owns writes each chunk into its writable side as it comes,
    /// paced by how fast the client reads; an error aborts the stream,
    /// which the runtime passes on as a broken-off response.
    async fn streamed(
        mut chunks: Box<dyn crate::platform::Chunks>,
        background: &impl crate::platform::Background,
    ) -> Self {
        let Ok(pipe) = web_sys::TransformStream::new() else {
            return EdgeBody::Empty;
        };
        let writer = match pipe.writable().get_writer() {
            Ok(writer) => writer,
            Err(_) => return EdgeBody::Empty,
        };
        // `wait_until`, not a bare `spawn_local`: a task the request does
        // not own outlives it when the client goes away mid-page, and then
        // wakes in another request's turn (workerd: "Cannot perform I/O on
        // behalf of a different request"), breaking that request's I/O.
        background.spawn_for_client(async move {
            while let Some(chunk) = chunks.next_chunk().await {
                let written = match chunk {
                    Ok(bytes) => {
                        let array = Uint8Array::from(bytes.as_slice());
                        settled(writer.write_with_chunk(&array)).await
                    }
                    Err(why) => {
                        let _ = settled(writer.abort_with_reason(&JsValue::from_str(&why))).await;
                        return;
                    }
                };
                if written.is_err() {
                    // The client went away.
                    return;
                }
            }
            let _ = settled(writer.close()).await;
        });
        EdgeBody::Stream(pipe.readable())
    }

    async fn bytes(self, limit: u64) -> Result<Option<Vec<u8>>, PlatformError> {
        let limit = ReadLimit {
            bytes: limit,
            ms: u64::MAX,
        };
        Ok(match self.buffered(limit).await? {
            Buffered::PassOn(body, _) => {
                // Read no further, and say so: a request body left half
                // read unsettles the runtime's next request (wrangler dev).
                if let EdgeBody::Stream(stream) = body {
                    let _ = stream.cancel();
                }
                None
            }
            Buffered::Whole(EdgeBody::Buffer(b), _) => Some(Uint8Array::new(&b).to_vec()),
            Buffered::Whole(EdgeBody::Bytes(b), _) => Some(b),
            Buffered::Whole(..) => Some(Vec::new()),
        })
    }
}

/// Reads a stream on the JS side, chunk by chunk, within `limit`. The
/// stream is teed first, so that a body found too long or too slow is still
/// whole for its client: the untouched branch holds what was read so far.
async fn read_within(
    body: EdgeBody,
    limit: ReadLimit,
) -> Result<Buffered<EdgeBody>, PlatformError> {
    let EdgeBody::Stream(stream) = body else {
        unreachable!("only streams are read here")
    };
    let err = |e: JsValue| PlatformError(format!("reading body: {e:?}"));
    let pair = stream.tee();
    let (reading, spare): (ReadableStream, ReadableStream) =
        (pair.get(0).unchecked_into(), pair.get(1).unchecked_into());
    let reader: ReadableStreamDefaultReader = reading.get_reader().unchecked_into();
    let chunks = js_sys::Array::new();
    let mut total: u64 = 0;
    let (done, value) = (JsValue::from_str("done"), JsValue::from_str("value"));
    // Resolves with `undefined`; a read resolves with `{done, value}`.
    let deadline = super::runtime::timer(u32::try_from(limit.ms).unwrap_or(u32::MAX));
    loop {
        let next = js_sys::Promise::race(&js_sys::Array::of2(&reader.read(), &deadline));
        let read = match settled(next).await {
            Ok(read) if read.is_undefined() => {
                let _ = reader.cancel();
                return Ok(Buffered::PassOn(EdgeBody::Stream(spare), Exceeded::Time));
            }
            Ok(read) => read,
            Err(e) => {
                let _ = spare.cancel();
                return Err(err(e));
            }
        };
        if js_sys::Reflect::get(&read, &done).map_err(err)?.is_truthy() {
            break;
        }
        let chunk: Uint8Array = js_sys::Reflect::get(&read, &value)
            .map_err(err)?
            .unchecked_into();
        total += u64::from(chunk.length());
        if total > limit.bytes {
            let _ = reader.cancel();
            return Ok(Buffered::PassOn(EdgeBody::Stream(spare), Exceeded::Bytes));
        }
        chunks.push(&chunk);
    }
    // Done with the spare before joining: it held every chunk too.
    let _ = spare.cancel();
    let whole = Uint8Array::new_with_length(total as u32);
    let mut offset = 0;
    for chunk in chunks.iter() {
        let chunk: Uint8Array = chunk.unchecked_into();
        whole.set(&chunk, offset);
        offset += chunk.length();
    }
    Ok(Buffered::Whole(EdgeBody::Buffer(whole.buffer()), total))
}

/// Bytes `start..=end` of a stream, copied JS-side out of the chunks that
/// hold them; the read stops (and the stream is cancelled) past `end`.
async fn read_range(
    stream: ReadableStream,
    start: u64,
    end: u64,
) -> Result<EdgeBody, PlatformError> {
    let err = |e: JsValue| PlatformError(format!("reading body: {e:?}"));
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let out = Uint8Array::new_with_length((end - start + 1) as u32);
    let (done, value) = (JsValue::from_str("done"), JsValue::from_str("value"));
    let mut offset: u64 = 0;
    while offset <= end {
        let read = settled(reader.read()).await.map_err(err)?;
        if js_sys::Reflect::get(&read, &done).map_err(err)?.is_truthy() {
            return Err(PlatformError(
                "the stored body ended before the range".into(),
            ));
        }
        let chunk: Uint8Array = js_sys::Reflect::get(&read, &value)
            .map_err(err)?
            .unchecked_into();
        let (from, to) = (offset, offset + u64::from(chunk.length()));
        let (keep_from, keep_to) = (from.max(start), to.min(end + 1));
        if keep_from < keep_to {
            let part = chunk.subarray((keep_from - from) as u32, (keep_to - from) as u32);
            out.set(&part, (keep_from - start) as u32);
        }
        offset = to;
    }
    let _ = reader.cancel();
    Ok(EdgeBody::Buffer(out.buffer()))
}

/// Reads a stream to its end on the JS side; rejects when the stream errors.
async fn read_all(stream: ReadableStream) -> Result<ArrayBuffer, PlatformError> {
    let err = |e: wasm_bindgen::JsValue| PlatformError(format!("reading body: {e:?}"));
    let response = web_sys::Response::new_with_opt_readable_stream(Some(&stream)).map_err(err)?;
    let buffer = settled(response.array_buffer().map_err(err)?)
        .await
        .map_err(err)?;
    Ok(buffer.unchecked_into())
}
