// The baseline: the least a JavaScript worker can do to serve a Cache API hit.
// Same key scheme (one Cache API match per request), same origin on a miss.
export default {
  async fetch(request, env, ctx) {
    const key = new URL(request.url);
    key.pathname = `/__bare${key.pathname}`;
    const hit = await caches.default.match(key.toString());
    if (hit) return hit;
    const url = new URL(request.url);
    const response = await fetch(env.ORIGIN + url.pathname + url.search);
    ctx.waitUntil(caches.default.put(key.toString(), response.clone()));
    return response;
  },
};
