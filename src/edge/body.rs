//! Bodies stay JS streams: the hit path hands the Cache API's stream to the
//! client without copying it through wasm memory.

use crate::platform::{Body, Buffered, PlatformError};
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader};

pub enum EdgeBody {
    Empty,
    Bytes(Vec<u8>),
    Stream(ReadableStream),
    /// A whole body read on the JS side (see [`Body::buffered`]); it never
    /// enters wasm memory, whose growth is for the isolate's life.
    Buffer(ArrayBuffer),
}

impl EdgeBody {
    pub fn from_stream(stream: Option<ReadableStream>) -> Self {
        stream.map_or(EdgeBody::Empty, EdgeBody::Stream)
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
        match self {
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
        }
    }

    async fn into_bytes(self) -> Result<Vec<u8>, PlatformError> {
        match self {
            EdgeBody::Empty => Ok(Vec::new()),
            EdgeBody::Bytes(b) => Ok(b),
            EdgeBody::Buffer(b) => Ok(Uint8Array::new(&b).to_vec()),
            EdgeBody::Stream(s) => {
                let buffer = read_all(s).await?;
                Ok(Uint8Array::new(&buffer).to_vec())
            }
        }
    }

    async fn buffered(self, limit: u64) -> Result<Buffered<Self>, PlatformError> {
        let length = match &self {
            EdgeBody::Empty => 0,
            EdgeBody::Bytes(b) => b.len() as u64,
            EdgeBody::Buffer(b) => u64::from(b.byte_length()),
            EdgeBody::Stream(_) => return read_within(self, limit).await,
        };
        Ok(match length > limit {
            true => Buffered::TooLarge(self),
            false => Buffered::Whole(self, length),
        })
    }
}

/// Reads a stream on the JS side, chunk by chunk, up to `limit` bytes. The
/// stream is teed first, so that a body found too long is still whole for
/// its client: the untouched branch holds at most what was read (`limit`).
async fn read_within(body: EdgeBody, limit: u64) -> Result<Buffered<EdgeBody>, PlatformError> {
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
    loop {
        let read = match JsFuture::from(reader.read()).await {
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
        if total > limit {
            let _ = reader.cancel();
            return Ok(Buffered::TooLarge(EdgeBody::Stream(spare)));
        }
        chunks.push(&chunk);
    }
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

/// Reads a stream to its end on the JS side; rejects when the stream errors.
async fn read_all(stream: ReadableStream) -> Result<ArrayBuffer, PlatformError> {
    let err = |e: wasm_bindgen::JsValue| PlatformError(format!("reading body: {e:?}"));
    let response = web_sys::Response::new_with_opt_readable_stream(Some(&stream)).map_err(err)?;
    let buffer = JsFuture::from(response.array_buffer().map_err(err)?)
        .await
        .map_err(err)?;
    Ok(buffer.unchecked_into())
}
