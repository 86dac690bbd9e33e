// A third baseline: edge-cache's runtime calls on a Cache API hit, made from
// JavaScript with no cache logic between them. It reads the request's fields
// as edge-cache's glue does (one pass over all of them) and its abort signal,
// stores copies as edge-cache does (a record field of the same size, the
// origin's `Cache-Control`, `Date` and tags moved into it, a retention
// `Cache-Control` in their place), compares the record with the one it parsed
// last, and rebuilds the hit with the same changes: the record and the Cache
// API's fields out, the origin's fields back, `Age` and `Cache-Status` set.
// What is left between this worker and edge-cache is the work done in wasm.
const SHADOWED = ['cache-control', 'date', 'cache-tag'];
let known = null;
let restored = '';

function fieldLines(headers) {
  let lines = '';
  headers.forEach((value, name) => {
    lines += name + ':' + value + '\n';
  });
  return lines;
}

export default {
  async fetch(request, env, ctx) {
    const signal = request.signal;
    const head = request.method + '\n' + request.url + '\n' + fieldLines(request.headers);
    const url = new URL(request.url);
    const key = `${url.origin}/__mimic/1${url.pathname}`;
    const hit = await caches.default.match(key);
    if (hit && !signal.aborted && head) {
      const record = hit.headers.get('x-edge-cache-meta');
      if (record !== known) {
        const parsed = JSON.parse(record);
        restored = parsed.record.response.shadow.filter(([name]) => name !== 'cache-tag').map(([name, value]) => `${name}:${value}\n`).join('');
        known = record;
      }
      const changes = `x-edge-cache-meta\ncf-cache-status\nage\ncache-control\ndate\n${restored}age:0\ncache-status:mimic; hit\n`;
      const response = new Response(hit.body, { status: hit.status, headers: hit.headers, encodeBody: 'manual' });
      const headers = response.headers;
      let start = 0;
      while (start < changes.length) {
        const end = changes.indexOf('\n', start);
        const colon = changes.indexOf(':', start);
        if (colon < 0 || colon > end) headers.delete(changes.slice(start, end));
        else headers.append(changes.slice(start, colon), changes.slice(colon + 1, end));
        start = end + 1;
      }
      return response;
    }
    const fetched = await fetch(env.ORIGIN + url.pathname + url.search);
    const body = await fetched.arrayBuffer();
    const headers = new Headers(fetched.headers);
    const shadow = SHADOWED.filter((name) => headers.has(name)).map((name) => [name, headers.get(name)]);
    for (const name of SHADOWED) headers.delete(name);
    const response = { primary: '9fe4708e1b3f8b9e9c3ccaef30618e95', stored_at: Math.floor(Date.now() / 1000), initial_age: 0, fresh_for: 86400, revalidate: 'WhenStale', shared_with_auth: true, status: 200, shadow, stale_while_revalidate: null, stale_if_error: null, fetched_ms: Date.now(), host: url.host, path: url.pathname };
    headers.set('x-edge-cache-meta', JSON.stringify({ v: 3, record: { response }, head: '14475091643157144058' }));
    headers.set('cache-control', 'public, max-age=172800');
    headers.set('content-length', String(body.byteLength));
    ctx.waitUntil(caches.default.put(key, new Response(body, { headers })));
    return new Response(body, { status: fetched.status, headers: fetched.headers });
  },
};
