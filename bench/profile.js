// A V8 CPU profile of the worker's isolate on the Cache API hit path: where
// its time goes, by function (self) and with callees (inclusive).
//
//   KEEP_NAMES=1 sh scripts/build.sh && node bench/profile.js
//   SCRIPT=bench/bare-worker.js node bench/profile.js      (another worker)
//
// Build with KEEP_NAMES=1, or wasm frames show as numbers. HOT_TIER_BYTES=0,
// so every hit reads the Cache API (HOT_TIER_BYTES=... to change it).
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { Miniflare } from 'miniflare';
import WebSocket from 'ws';

const SCRIPT = resolve(process.env.SCRIPT ?? 'build/index.js');
const SECONDS = Number(process.env.SECONDS ?? 8);
const TOP = Number(process.env.TOP ?? 40);
const INSPECTOR_PORT = 9339;

const origin = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=86400', etag: '"bench"', 'cache-tag': 'bench,product-1,category-2,home' });
  res.end('x'.repeat(4096));
});
await new Promise((r) => origin.listen(0, '127.0.0.1', r));
const mf = new Miniflare({
  host: '127.0.0.1',
  port: 0,
  inspectorPort: INSPECTOR_PORT,
  modules: true,
  scriptPath: SCRIPT,
  modulesRoot: dirname(SCRIPT),
  modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }],
  compatibilityDate: '2026-04-20',
  compatibilityFlags: ['enable_request_signal'],
  kvNamespaces: ['CACHE_KV'],
  bindings: { ORIGIN: `http://127.0.0.1:${origin.address().port}`, ADMIN_TOKEN: 'x'.repeat(32), HOT_TIER_BYTES: process.env.HOT_TIER_BYTES ?? '0' },
});
const url = `${(await mf.ready).origin}/bench/hit`;
for (let i = 0; i < 10; i++) {
  await (await fetch(url)).text();
  await new Promise((r) => setTimeout(r, 50));
}

// The user worker's isolate (Miniflare runs its own services beside it).
const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json();
const target = targets.find((t) => t.title?.includes('core:user:'));
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((r) => ws.on('open', r));
let id = 0;
const pending = new Map();
ws.on('message', (m) => {
  const data = JSON.parse(m);
  pending.get(data.id)?.(data);
  pending.delete(data.id);
});
const send = (method, params = {}) => new Promise((r) => {
  pending.set(++id, r);
  ws.send(JSON.stringify({ id, method, params }));
});
await send('Profiler.enable');
await send('Profiler.setSamplingInterval', { interval: 100 });
await send('Profiler.start');
const out = execFileSync('wrk', ['-t', '2', '-c', '16', '-d', `${SECONDS}s`, url], { encoding: 'utf8' });
const { result } = await send('Profiler.stop');

const { nodes, samples } = result.profile;
const byId = new Map(nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => n.callFrame.functionName || `(anonymous ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber})`;
const self = new Map();
const inclusive = new Map();
for (const sample of samples) {
  const leaf = byId.get(sample);
  self.set(name(leaf), (self.get(name(leaf)) ?? 0) + 1);
  const seen = new Set();
  for (let at = sample; at !== undefined; at = parent.get(at)) {
    const n = name(byId.get(at));
    if (!seen.has(n)) inclusive.set(n, (inclusive.get(n) ?? 0) + 1);
    seen.add(n);
  }
}
const top = (counts) =>
  [...counts].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([n, c]) => `${((c / samples.length) * 100).toFixed(1).padStart(5)}%  ${n.slice(0, 150)}`).join('\n');
console.log(`${SCRIPT}: ${out.match(/(\d+) requests in/)[1]} requests, ${samples.length} samples`);
console.log(`\nself\n${top(self)}\n\ninclusive\n${top(inclusive)}`);
ws.close();
await mf.dispose();
origin.close();
