//! Bodies stay JS streams: the hit path hands the Cache API's stream to the
//! client without copying it through wasm memory.

use crate::platform::{Body, PlatformError};
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStream;

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

    async fn buffered(self) -> Result<(Self, u64), PlatformError> {
        let buffer = match self {
            EdgeBody::Stream(s) => read_all(s).await?,
            EdgeBody::Buffer(b) => b,
            EdgeBody::Empty => return Ok((EdgeBody::Empty, 0)),
            EdgeBody::Bytes(b) => {
                let length = b.len() as u64;
                return Ok((EdgeBody::Bytes(b), length));
            }
        };
        let length = u64::from(buffer.byte_length());
        Ok((EdgeBody::Buffer(buffer), length))
    }
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
