// Runs the built worker (build/index.js) in workerd through Miniflare, with the
// real Cache API and KV, in front of an origin server on 127.0.0.1 that the
// test scripts and counts.
import http from 'node:http';
import net from 'node:net';
import { Miniflare } from 'miniflare';

/**
 * An origin whose answers are set per path; every request it sees is recorded.
 * An answer is `{status, headers, body}`, `'hang'`, `'reset'`, `{raw}`:
 * bytes written to the socket as they are before it closes, or `{stream}`:
 * `{headers, chunks, gapMs}`, a body that trickles.
 */
export async function startOrigin() {
  const routes = new Map();
  const seen = [];
  const server = http.createServer({ maxHeaderSize: 256 * 1024 }, async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const request = { method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString() };
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
    // Hand-made bytes (a broken framing, say), then the connection closes.
    if (answer.raw) return req.socket.end(answer.raw);
    // A body sent a chunk at a time, `gapMs` apart.
    if (answer.stream) {
      res.writeHead(200, answer.stream.headers);
      for (const chunk of answer.stream.chunks) {
        res.write(chunk);
        await sleep(answer.stream.gapMs);
      }
      return res.end();
    }
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

/**
 * Starts the worker with `vars`; `fetch(path, init)` talks to it as a client would.
 * `kvPersist`: a directory (outside the repository) for KV, so that two
 * workers, or one restarted, share it: two locations that share only KV.
 * `cachePersist`: the same for the Cache API (two isolates of one location).
 * The worker's log is passed on to stderr and kept in `logs` (its text).
 */
export async function startWorker(vars = {}, { kvPersist, cachePersist, kv = true } = {}) {
  const logs = [];
  const keep = (stream) =>
    stream.on('data', (chunk) => {
      logs.push(chunk.toString());
      process.stderr.write(chunk);
    });
  const mf = new Miniflare({
    handleRuntimeStdio(stdout, stderr) {
      keep(stdout);
      keep(stderr);
    },
    modules: true,
    scriptPath: 'build/index.js',
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }],
    compatibilityDate: '2026-04-20',
    compatibilityFlags: ['enable_request_signal'],
    // `kv: false` leaves CACHE_KV to `vars` (a stand-in that fails, say).
    kvNamespaces: kv ? ['CACHE_KV'] : [],
    ...(kvPersist ? { kvPersist } : {}),
    ...(cachePersist ? { cachePersist } : {}),
    bindings: { ADMIN_PATH: '/_admin', CACHE_NAME: 'edge-cache', ...vars },
  });
  const url = await mf.ready;
  const fetch = async (path, init = {}) => {
    const res = await mf.dispatchFetch(new URL(path, 'http://shop.test'), { redirect: 'manual', ...init });
    const body = await res.text();
    return { status: res.status, headers: res.headers, body, cacheStatus: res.headers.get('cache-status') };
  };
  return {
    fetch,
    /** The worker's loopback address, for a browser. */
    url,
    /** Everything the worker has logged so far. */
    logs: () => logs.join(''),
    /** Sends `fields` as they are, over a socket (see `rawRequest`). */
    raw: (path, fields, options) => rawRequest(url, path, fields, options),
    /** Waits until `path` is answerable from cache (background writes finish after the response). */
    async stored(path, headers = {}) {
      for (let i = 0; i < 100; i++) {
        const res = await fetch(path, { headers: { ...headers, 'cache-control': 'only-if-cached' } });
        // Stored, and stale already: a short-lived entry on a slow machine.
        if (res.status !== 504 || /only a stale response is cached/.test(res.body)) return res;
        await sleep(20);
      }
      throw new Error(`${path} was never stored`);
    },
    dispose: () => mf.dispose(),
  };
}

/**
 * Sends one request byte for byte to `base` (repeated fields, any spelling,
 * no decompression) and reads the answer to the end of the connection.
 * `complete` says whether the body arrived whole (its Content-Length, or a
 * chunked body's last chunk).
 */
export function rawRequest(base, path, fields = [], { method = 'GET', host = 'shop.test', body = '' } = {}) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      const lines = fields.map(([name, value]) => `${name}: ${value}\r\n`).join('');
      const length = body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : '';
      socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${length}${lines}\r\n${body}`);
    });
    const chunks = [];
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      // Done as soon as the framing says so: the server may keep the connection.
      const parsed = parseResponse(Buffer.concat(chunks), method);
      if (parsed?.complete) {
        socket.destroy();
        resolve(parsed);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(parseResponse(Buffer.concat(chunks), method) ?? { status: 0, headers: {}, body: Buffer.alloc(0), complete: false }));
  });
}

/** The response in `raw` so far (interim 1xx heads skipped); `null` until its head has arrived. */
function parseResponse(raw, method) {
  while (/^HTTP\/1\.1 1\d\d /.test(raw.subarray(0, 13).toString('latin1'))) {
    const interim = raw.indexOf('\r\n\r\n');
    if (interim < 0) return null;
    raw = raw.subarray(interim + 4);
  }
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(head[0].split(' ')[1]);
  const headers = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  let rest = raw.subarray(end + 4);
  if (method === 'HEAD' || [204, 304].includes(status)) return { status, headers, body: Buffer.alloc(0), complete: true };
  if (headers['transfer-encoding'] === 'chunked') {
    const parts = [];
    for (;;) {
      const lineEnd = rest.indexOf('\r\n');
      if (lineEnd < 0) return { status, headers, body: Buffer.concat(parts), complete: false };
      const size = parseInt(rest.subarray(0, lineEnd).toString(), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(parts), complete: true };
      const chunk = rest.subarray(lineEnd + 2, lineEnd + 2 + size);
      parts.push(chunk);
      if (chunk.length < size) return { status, headers, body: Buffer.concat(parts), complete: false };
      rest = rest.subarray(lineEnd + 2 + size + 2);
    }
  }
  const length = headers['content-length'];
  const complete = length === undefined || rest.length === Number(length);
  return { status, headers, body: rest, complete };
}

/** Agents every suite uses: a phone and a desktop browser. */
export const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1';
export const DESKTOP = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A loopback port nothing listens on (yet). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
