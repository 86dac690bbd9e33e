// The crossings of the hit path, each done in one call (see convert.rs).
//
// A message's head crosses as one string of lines: a field per line as
// `name:value`. Neither part can hold a line break (the runtime refuses
// them in values and URLs) and a name cannot hold `:`. Reading a Headers
// object from Rust otherwise costs an array per field and a JSON round trip.

function fieldLines(headers) {
  // forEach, not for-of: no iterator result and no [name, value] array per field.
  let lines = '';
  headers.forEach((value, name) => {
    lines += name + ':' + value + '\n';
  });
  return lines;
}

// `method`, `url`, then the fields.
export function requestHead(request) {
  return request.method + '\n' + request.url + '\n' + fieldLines(request.headers);
}

// `status`, then the fields.
export function responseHead(response) {
  return response.status + '\n' + fieldLines(response.headers);
}

// A stored response sent on with some fields changed: its headers are
// copied inside the runtime, and only the changes cross. `changes` holds a
// line per change: `name` deletes the field, `name:value` appends a value
// (a changed field is deleted, then appended anew).
export function respondWith(stored, status, changes) {
  const response = new Response(stored.body, {
    status,
    headers: stored.headers,
    // The stored bytes are as the origin encoded them: send them as they are.
    encodeBody: 'manual',
  });
  const headers = response.headers;
  let start = 0;
  while (start < changes.length) {
    const end = changes.indexOf('\n', start);
    const colon = changes.indexOf(':', start);
    if (colon < 0 || colon > end) {
      headers.delete(changes.slice(start, end));
    } else {
      headers.append(changes.slice(start, colon), changes.slice(colon + 1, end));
    }
    start = end + 1;
  }
  return response;
}

// Whether a stored response's record is `known` (a string this isolate
// read before), compared without the record crossing into wasm.
export function recordIs(response, known) {
  return response.headers.get('x-edge-cache-meta') === known;
}

// Hands `promise`'s outcome to `settle` (the instance's one closure, see
// task.rs) with the number of the future waiting on it.
export function whenSettled(promise, settle, slot) {
  promise.then(
    (value) => settle(slot, value, true),
    (error) => settle(slot, error, false),
  );
}
