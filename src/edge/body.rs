//! Bodies stay JS streams: the hit path hands the Cache API's stream to the
//! client without copying it through wasm memory.

use crate::platform::{Body, PlatformError};
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStream;

pub enum EdgeBody {
    Empty,
    Bytes(Vec<u8>),
    Stream(ReadableStream),
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
        let stream = match self {
            EdgeBody::Empty => return Ok(Vec::new()),
            EdgeBody::Bytes(b) => return Ok(b),
            EdgeBody::Stream(s) => s,
        };
        let err = |e: wasm_bindgen::JsValue| PlatformError(format!("reading body: {e:?}"));
        let response =
            web_sys::Response::new_with_opt_readable_stream(Some(&stream)).map_err(err)?;
        let buffer = JsFuture::from(response.array_buffer().map_err(err)?)
            .await
            .map_err(err)?;
        Ok(Uint8Array::new(&buffer).to_vec())
    }
}
