// Runs the built worker (build/index.js) in workerd through Miniflare, with the
// real Cache API and KV, in front of an origin server on 127.0.0.1 that the
// test scripts and counts.
import http from 'node:http';
import net from 'node:net';
import { Miniflare } from 'miniflare';

/** An origin whose answers are set per path; every request it sees is recorded. */
export async function startOrigin() {
  const routes = new Map();
  const seen = [];
  const server = http.createServer({ maxHeaderSize: 256 * 1024 }, async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const request = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
    seen.push(request);
    const path = req.url.split('?')[0];
    const route = routes.get(path);
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('no route');
    }
    const answer = await route(request, seen.filter((r) => r.url.split('?')[0] === path).length);
    if (answer === 'hang') return; // never answers
    if (answer === 'reset') return req.socket.destroy();
    res.writeHead(answer.status ?? 200, answer.headers ?? {});
    res.end(answer.body ?? '');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Answer `path` with `answer` (an object, or a function of the request and call number). */
    route(path, answer) {
      routes.set(path, typeof answer === 'function' ? answer : () => answer);
    },
    /** Requests the origin received for `path` (any query). */
    calls(path) {
      return seen.filter((r) => r.url.split('?')[0] === path);
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Starts the worker with `vars`; `fetch(path, init)` talks to it as a client would. */
export async function startWorker(vars = {}) {
  const mf = new Miniflare({
    modules: true,
    scriptPath: 'build/index.js',
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }],
    compatibilityDate: '2026-04-20',
    kvNamespaces: ['CACHE_KV'],
    bindings: { ADMIN_PATH: '/_admin', CACHE_NAME: 'edge-cache', ...vars },
  });
  await mf.ready;
  const fetch = async (path, init = {}) => {
    const res = await mf.dispatchFetch(new URL(path, 'http://shop.test'), { redirect: 'manual', ...init });
    const body = await res.text();
    return { status: res.status, headers: res.headers, body, cacheStatus: res.headers.get('cache-status') };
  };
  return {
    fetch,
    /** Waits until `path` is answerable from cache (background writes finish after the response). */
    async stored(path, headers = {}) {
      for (let i = 0; i < 100; i++) {
        const res = await fetch(path, { headers: { ...headers, 'cache-control': 'only-if-cached' } });
        if (res.status !== 504) return res;
        await sleep(20);
      }
      throw new Error(`${path} was never stored`);
    },
    dispose: () => mf.dispose(),
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A loopback port nothing listens on (yet). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
