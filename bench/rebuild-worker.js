// A second baseline: the bare worker's Cache API hit, with the response
// rebuilt as any cache must rebuild it to change a field (a Cache API
// response's headers are immutable, and a hit changes `Age` and adds
// `Cache-Status`). The least JavaScript can do for what edge-cache does.
export default {
  async fetch(request, env, ctx) {
    const key = new URL(request.url);
    key.pathname = `/__bare${key.pathname}`;
    const hit = await caches.default.match(key.toString());
    if (hit) {
      const response = new Response(hit.body, { status: hit.status, headers: hit.headers, encodeBody: 'manual' });
      response.headers.set('age', '1');
      response.headers.set('cache-status', 'rebuild; hit');
      response.headers.delete('cache-tag');
      return response;
    }
    const url = new URL(request.url);
    const response = await fetch(env.ORIGIN + url.pathname + url.search);
    ctx.waitUntil(caches.default.put(key.toString(), response.clone()));
    return response;
  },
};
