// Hit-path throughput of edge-cache against a bare JavaScript worker serving
// the same Cache API hit, side by side in one run under the same workerd
// (Miniflare), with wrk on loopback. Rounds alternate between the two so that
// drift on the machine hits both alike. Prints a table and writes
// bench/results/latest.json.
//
//   make bench                     (defaults: 4 rounds of 8 s, 16 connections)
//   ROUNDS=6 SECONDS=10 CONNECTIONS=32 node bench/run.js
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Miniflare } from 'miniflare';

const ROUNDS = Number(process.env.ROUNDS ?? 4);
const SECONDS = Number(process.env.SECONDS ?? 8);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
const BODY = 'x'.repeat(4096);

try {
  execFileSync('wrk', ['--version'], { stdio: 'ignore' });
} catch (e) {
  if (e.code === 'ENOENT') {
    console.error('wrk is not installed: apt-get install -y wrk');
    process.exit(2);
  }
}

const origin = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=86400', etag: '"bench"' });
  res.end(BODY);
});
await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve));
const ORIGIN = `http://127.0.0.1:${origin.address().port}`;

const common = { host: '127.0.0.1', compatibilityDate: '2026-04-20', bindings: { ORIGIN } };

// Each Miniflare runs its own workerd child process; its CPU time per request
// (utime + stime from /proc) is steadier than throughput on a small machine
// where wrk competes for the same cores.
const children = () => new Set(execFileSync('ps', ['-o', 'pid=', '--ppid', String(process.pid)], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number));
const pids = {};
async function start(name, options) {
  const before = children();
  const mf = new Miniflare(options);
  await mf.ready;
  pids[name] = [...children()].filter((pid) => !before.has(pid));
  return mf;
}
const cpuSeconds = (name) =>
  pids[name].reduce((sum, pid) => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return sum + (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return sum;
    }
  }, 0);

const workers = {
  'edge-cache (Rust/wasm)': await start('edge-cache (Rust/wasm)', {
    ...common,
    port: 0,
    modules: true,
    scriptPath: 'build/index.js',
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }],
    kvNamespaces: ['CACHE_KV'],
  }),
  'bare JS worker': await start('bare JS worker', { ...common, port: 0, modules: true, scriptPath: 'bench/bare-worker.js' }),
};
const urls = {};
for (const [name, mf] of Object.entries(workers)) {
  urls[name] = `${(await mf.ready).origin}/bench/hit`;
  // Warm: one miss, then wait until the entry is served from cache.
  for (let i = 0; i < 50; i++) {
    const res = await fetch(urls[name]);
    const text = await res.text();
    if (text.length !== BODY.length) throw new Error(`${name}: wrong body`);
    if (i > 0 && (res.headers.get('cache-status')?.includes('hit') || res.headers.get('cf-cache-status') !== null || name.startsWith('bare'))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
}
const check = await fetch(urls['edge-cache (Rust/wasm)']);
if (!check.headers.get('cache-status')?.includes('; hit')) throw new Error(`edge-cache is not hitting: ${check.headers.get('cache-status')}`);
await check.text();

function wrk(name, url) {
  const cpuBefore = cpuSeconds(name);
  const out = execFileSync('wrk', ['-t', '2', '-c', String(CONNECTIONS), '-d', `${SECONDS}s`, '--latency', url], { encoding: 'utf8' });
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const p50 = out.match(/50%\s+([\d.]+)(us|ms|s)/);
  const p99 = out.match(/99%\s+([\d.]+)(us|ms|s)/);
  const ms = (m) => Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]];
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
  const requests = Number(out.match(/(\d+) requests in/)[1]);
  const cpuUs = ((cpuSeconds(name) - cpuBefore) / requests) * 1e6;
  return { rps, p50: ms(p50), p99: ms(p99), errors: Number(errors), cpuUs };
}

const results = Object.fromEntries(Object.keys(workers).map((n) => [n, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? Object.keys(workers) : Object.keys(workers).reverse();
  for (const name of order) {
    const r = wrk(name, urls[name]);
    results[name].push(r);
    console.error(`round ${round + 1}/${ROUNDS} ${name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, ${r.cpuUs.toFixed(0)} µs CPU/request`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = Object.fromEntries(
  Object.entries(results).map(([name, rs]) => [
    name,
    {
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      cpu_us: median(rs.map((r) => r.cpuUs)),
      errors: rs.reduce((a, r) => a + r.errors, 0),
    },
  ]),
);
const ours = summary['edge-cache (Rust/wasm)'];
const bare = summary['bare JS worker'];
const wasm = readFileSync('build/index_bg.wasm');
const report = {
  date: new Date().toISOString(),
  settings: { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, body_bytes: BODY.length },
  summary,
  hit_throughput_ratio: ours.rps / bare.rps,
  hit_cpu_ratio: ours.cpu_us / bare.cpu_us,
  wasm_bytes: wasm.length,
  wasm_gzip_bytes: gzipSync(wasm, { level: 9 }).length,
};

console.log(`\nhit path, ${BODY.length}-byte body, ${CONNECTIONS} connections, median of ${ROUNDS} x ${SECONDS}s`);
console.log('worker                    req/s    p50 ms   p99 ms  CPU µs/req  non-2xx');
for (const [name, s] of Object.entries(summary)) {
  console.log(
    `${name.padEnd(24)} ${s.rps.toFixed(0).padStart(7)} ${s.p50.toFixed(2).padStart(9)} ${s.p99.toFixed(2).padStart(8)} ${s.cpu_us.toFixed(0).padStart(11)} ${String(s.errors).padStart(8)}`,
  );
}
console.log(`\nedge-cache / bare throughput: ${(report.hit_throughput_ratio * 100).toFixed(1)}%`);
console.log(`edge-cache / bare CPU per hit (workerd process): ${(report.hit_cpu_ratio * 100).toFixed(1)}%`);
console.log(`wasm: ${report.wasm_bytes} bytes, ${report.wasm_gzip_bytes} gzipped`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/latest.json', JSON.stringify(report, null, 2));

for (const mf of Object.values(workers)) await mf.dispose();
origin.close();
