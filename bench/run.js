// Hit-path throughput of edge-cache against a bare JavaScript worker serving
// the same Cache API hit, side by side in one run under the same workerd
// (Miniflare), with wrk on loopback. Rounds alternate between the two so that
// drift on the machine hits both alike. Prints a table and writes
// bench/results/latest.json.
//
//   make bench                     (defaults: 4 rounds of 8 s, 16 connections)
//   ROUNDS=6 SECONDS=10 CONNECTIONS=32 node bench/run.js
import http from 'node:http';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname } from 'node:path';
import { cpus } from 'node:os';
import { Miniflare } from 'miniflare';

const ROUNDS = Number(process.env.ROUNDS ?? 4);
const SECONDS = Number(process.env.SECONDS ?? 8);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
// The hit's body: 4 KiB by default, smaller than most pages, so that the
// per-request cost weighs most (BODY_BYTES for others).
const BODY = 'x'.repeat(Number(process.env.BODY_BYTES ?? 4096));

try {
  execFileSync('wrk', ['--version'], { stdio: 'ignore' });
} catch (e) {
  if (e.code === 'ENOENT') {
    console.error('wrk is not installed: apt-get install -y wrk');
    process.exit(2);
  }
}

// `/stampede/…` answers after STAMPEDE_DELAY ms and counts its calls: the
// first call of an `expired` path is stored already stale (Age = max-age,
// with an ETag), later calls revalidate it with a 304.
const STAMPEDE = Number(process.env.STAMPEDE ?? 100);
const STAMPEDE_DELAY = Number(process.env.STAMPEDE_DELAY ?? 500);
const stampedeCalls = new Map();
const origin = http.createServer(async (req, res) => {
  if (req.url.startsWith('/stampede/')) {
    const calls = (stampedeCalls.get(req.url) ?? 0) + 1;
    stampedeCalls.set(req.url, calls);
    await new Promise((r) => setTimeout(r, STAMPEDE_DELAY));
    const headers = { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60', etag: '"s"' };
    if (req.headers['if-none-match'] === '"s"') {
      res.writeHead(304, headers);
      return res.end();
    }
    if (req.url.includes('expired')) headers.age = '60';
    res.writeHead(200, headers);
    return res.end(BODY);
  }
  // Composed pages: `/bench/esi-N` includes N distinct fragments of 400 bytes.
  const esi = /^\/bench\/esi-(\d+)$/.exec(req.url);
  if (esi) {
    const includes = Array.from({ length: Number(esi[1]) }, (_, i) => `<esi:include src="/bench/frag-${i}"/>`).join('\n');
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=86400', 'surrogate-control': 'content="ESI/1.0"' });
    return res.end(`<html><body>${'x'.repeat(1024)}\n${includes}\n</body></html>`);
  }
  if (req.url.startsWith('/bench/frag-')) {
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=86400' });
    return res.end('f'.repeat(400));
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=86400', etag: '"bench"', 'cache-tag': 'bench,product-1,category-2,home' });
  res.end(BODY);
});
await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve));
const ORIGIN = `http://127.0.0.1:${origin.address().port}`;

const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const common = { host: '127.0.0.1', compatibilityDate: '2026-04-20', compatibilityFlags: ['enable_request_signal'], bindings: { ORIGIN, ADMIN_TOKEN, ESI: 'on' } };
// Unrelated purge targets in the memo, newer than the benchmarked entry, so
// that every hit checks its four tags, URL and prefixes against them all.
const PURGE_TARGETS = Number(process.env.PURGE_TARGETS ?? 3000);

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
  // The same build with the in-isolate tier off: every hit reads the Cache API.
  'edge-cache, hot tier off': await start('edge-cache, hot tier off', {
    ...common,
    bindings: { ...common.bindings, HOT_TIER_BYTES: '0' },
    port: 0,
    modules: true,
    scriptPath: 'build/index.js',
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }],
    kvNamespaces: ['CACHE_KV'],
  }),
  'bare JS worker': await start('bare JS worker', { ...common, port: 0, modules: true, scriptPath: 'bench/bare-worker.js' }),
  // The bare worker rebuilding its response, as changing `Age` requires.
  'JS worker, rebuilt': await start('JS worker, rebuilt', { ...common, port: 0, modules: true, scriptPath: 'bench/rebuild-worker.js' }),
  // edge-cache's runtime calls on a hit, from JavaScript, without its logic.
  "JS, edge-cache's calls": await start("JS, edge-cache's calls", { ...common, port: 0, modules: true, scriptPath: 'bench/mimic-worker.js' }),
};
// The least a Rust/wasm worker does for the same hit, when built
// (`sh bench/wasm-floor/build.sh`): what crossing into wasm costs alone.
if (existsSync('bench/wasm-floor/build/index.js')) {
  workers['Rust/wasm floor'] = await start('Rust/wasm floor', {
    ...common,
    port: 0,
    modules: true,
    scriptPath: 'bench/wasm-floor/build/index.js',
    modulesRoot: 'bench/wasm-floor/build',
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }],
  });
}
// BASELINE=<dir>/build/index.js adds an earlier build of edge-cache to the
// same run, with its hot tier on and off.
if (process.env.BASELINE) {
  for (const [name, vars] of [['edge-cache (baseline)', {}], ['edge-cache (baseline), hot tier off', { HOT_TIER_BYTES: '0' }]]) {
    workers[name] = await start(name, {
      ...common,
      bindings: { ...common.bindings, ...vars },
      port: 0,
      modules: true,
      scriptPath: process.env.BASELINE,
      modulesRoot: dirname(process.env.BASELINE),
      modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }],
      kvNamespaces: ['CACHE_KV'],
    });
  }
}
const urls = {};
for (const [name, mf] of Object.entries(workers)) {
  urls[name] = `${(await mf.ready).origin}/bench/hit`;
  // Warm: one miss, then wait until the entry is served from cache.
  for (let i = 0; i < 50; i++) {
    const res = await fetch(urls[name]);
    const text = await res.text();
    if (text.length !== BODY.length) throw new Error(`${name}: wrong body`);
    if (i > 0 && (res.headers.get('cache-status')?.includes('hit') || res.headers.get('cf-cache-status') !== null || name.startsWith('bare') || name.startsWith('JS'))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
}
for (const name of Object.keys(workers).filter((n) => n.startsWith('edge-cache'))) {
  const res = await fetch(urls[name]);
  if (!res.headers.get('cache-status')?.includes('; hit')) throw new Error(`${name} is not hitting: ${res.headers.get('cache-status')}`);
  await res.text();
}
const purgeBase = (await workers['edge-cache (Rust/wasm)'].ready).origin;
for (let done = 0; done < PURGE_TARGETS; done += 100) {
  const tags = Array.from({ length: Math.min(100, PURGE_TARGETS - done) }, (_, i) => `unrelated-${done + i}`);
  const res = await fetch(`${purgeBase}/_admin/purge`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ tags }) });
  if (res.status !== 200) throw new Error(`purge failed: ${res.status} ${await res.text()}`);
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
  const names = Object.keys(workers);
  const order = round % 2 === 0 ? names : [...names].reverse();
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
  settings: { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, body_bytes: BODY.length, purge_targets: PURGE_TARGETS },
  summary,
  hit_throughput_ratio: ours.rps / bare.rps,
  hit_cpu_ratio: ours.cpu_us / bare.cpu_us,
  wasm_bytes: wasm.length,
  wasm_gzip_bytes: gzipSync(wasm, { level: 9 }).length,
};

console.log(`\nhit path, ${BODY.length}-byte body, ${CONNECTIONS} connections, median of ${ROUNDS} x ${SECONDS}s, ${PURGE_TARGETS} purge targets newer than the entry`);
console.log('worker                    req/s    p50 ms   p99 ms  CPU µs/req  non-2xx');
for (const [name, s] of Object.entries(summary)) {
  console.log(
    `${name.padEnd(24)} ${s.rps.toFixed(0).padStart(7)} ${s.p50.toFixed(2).padStart(9)} ${s.p99.toFixed(2).padStart(8)} ${s.cpu_us.toFixed(0).padStart(11)} ${String(s.errors).padStart(8)}`,
  );
}
// Ratios within each round (the workers ran back to back there), then their
// median: steadier than a ratio of medians when the machine drifts.
const paired = (name, field) => median(results[name].map((r, i) => r[field] / results['bare JS worker'][i][field]));
report.paired = Object.fromEntries(
  Object.keys(workers)
    .filter((n) => n !== 'bare JS worker')
    .map((n) => [n, { throughput: paired(n, 'rps'), cpu: paired(n, 'cpuUs') }]),
);
console.log('\nmedian of per-round ratios to the bare JS worker (throughput, CPU per request):');
for (const [name, r] of Object.entries(report.paired)) {
  console.log(`  ${name.padEnd(26)} ${(r.throughput * 100).toFixed(1).padStart(6)}%  ${(r.cpu * 100).toFixed(1).padStart(6)}%`);
}
console.log(`\nedge-cache / bare throughput: ${(report.hit_throughput_ratio * 100).toFixed(1)}%`);
console.log(`edge-cache / bare CPU per hit (workerd process): ${(report.hit_cpu_ratio * 100).toFixed(1)}%`);
const tierOff = summary['edge-cache, hot tier off'];
report.tier_off_throughput_ratio = tierOff.rps / bare.rps;
report.tier_off_cpu_ratio = tierOff.cpu_us / bare.cpu_us;
console.log(`hot tier off (Cache API hit) / bare throughput: ${(report.tier_off_throughput_ratio * 100).toFixed(1)}%, CPU per hit: ${(report.tier_off_cpu_ratio * 100).toFixed(1)}%`);
const baseline = summary['edge-cache (baseline)'];
if (baseline) {
  report.baseline_throughput_ratio = baseline.rps / bare.rps;
  report.baseline_cpu_ratio = baseline.cpu_us / bare.cpu_us;
  console.log(`baseline / bare throughput: ${(report.baseline_throughput_ratio * 100).toFixed(1)}%, CPU per hit: ${(report.baseline_cpu_ratio * 100).toFixed(1)}%`);
}
console.log(`wasm: ${report.wasm_bytes} bytes, ${report.wasm_gzip_bytes} gzipped`);

// Sharing one core: every worker's workerd pinned to one core and driven
// at once (one wrk each, pinned to another core), so the kernel gives each
// the same CPU time and each one's throughput is the inverse of its cost per
// request, measured under the same conditions at the same moment. Rounds in
// turn (above) see the machine's speed drift between runs by ±15% here;
// these ratios move by a few points. Needs `taskset` and two cores.
const SHARED_ROUNDS = Number(process.env.SHARED_ROUNDS ?? 6);
const cores = cpus().length;
let taskset = true;
try {
  execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
} catch {
  taskset = false;
}
if (SHARED_ROUNDS > 0 && taskset && cores >= 2) {
  const pin = (cpus) => { for (const pid of Object.values(pids).flat()) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' }); };
  const wrkAt = (name) =>
    new Promise((resolve) => {
      const cpuBefore = cpuSeconds(name);
      const child = spawn('taskset', ['-c', '0', 'wrk', '-t', '1', '-c', '8', '-d', `${SECONDS}s`, urls[name]]);
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('close', () => {
        const requests = Number(out.match(/(\d+) requests in/)[1]);
        resolve({ rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]), cpuUs: ((cpuSeconds(name) - cpuBefore) / requests) * 1e6 });
      });
    });
  pin('1');
  const shared = Object.fromEntries(Object.keys(workers).map((n) => [n, []]));
  for (let round = 0; round < SHARED_ROUNDS; round++) {
    const names = Object.keys(workers);
    const runs = await Promise.all(names.map(wrkAt));
    names.forEach((name, i) => shared[name].push(runs[i]));
    console.error(`shared round ${round + 1}/${SHARED_ROUNDS}: ${names.map((n, i) => `${n} ${runs[i].rps.toFixed(0)}`).join(', ')}`);
  }
  pin(`0-${cores - 1}`);
  const toBare = (name, field) => median(shared[name].map((r, i) => r[field] / shared['bare JS worker'][i][field]));
  report.shared = Object.fromEntries(
    Object.keys(workers)
      .filter((n) => n !== 'bare JS worker')
      .map((n) => [n, { throughput: toBare(n, 'rps'), cpu: toBare(n, 'cpuUs') }]),
  );
  console.log(`\nsharing one core, all at once (median of ${SHARED_ROUNDS} x ${SECONDS}s), ratios to the bare JS worker (throughput, CPU per request):`);
  for (const [name, r] of Object.entries(report.shared)) {
    console.log(`  ${name.padEnd(26)} ${(r.throughput * 100).toFixed(1).padStart(6)}%  ${(r.cpu * 100).toFixed(1).padStart(6)}%`);
  }
} else if (SHARED_ROUNDS > 0) {
  console.log('\nsharing one core: skipped (needs taskset and two cores)');
}

// Composed pages against a single hit, edge-cache alone, rounds alternating.
const ESI_CASES = (process.env.ESI_CASES ?? '1,5,10').split(',').filter(Boolean).map(Number);
if (ESI_CASES.length) {
  const name = 'edge-cache (Rust/wasm)';
  const base = (await workers[name].ready).origin;
  const cases = { 'single hit': `${base}/bench/hit`, ...Object.fromEntries(ESI_CASES.map((n) => [`${n} fragments`, `${base}/bench/esi-${n}`])) };
  for (const [label, url] of Object.entries(cases)) {
    for (let i = 0; i < 20; i++) {
      // A pooled connection idle since the warm-up may have been closed by now: retry.
      const res = await fetch(url).catch(() => fetch(url));
      const body = await res.text();
      if (label !== 'single hit' && /esi:include/.test(body)) throw new Error(`${label}: not composed`);
      if (/; hit/.test(res.headers.get('cache-status')) && (label === 'single hit' || new RegExp(`esi-hits=${label.split(' ')[0]}`).test(res.headers.get('cache-status')))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const composed = Object.fromEntries(Object.keys(cases).map((label) => [label, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const labels = Object.keys(cases);
    for (const label of round % 2 === 0 ? labels : [...labels].reverse()) {
      const r = wrk(name, cases[label]);
      composed[label].push(r);
      console.error(`round ${round + 1}/${ROUNDS} composed ${label}: ${r.rps.toFixed(0)} req/s, ${r.cpuUs.toFixed(0)} µs CPU/request`);
    }
  }
  const pairedToSingle = (label, field) => median(composed[label].map((r, i) => r[field] / composed['single hit'][i][field]));
  report.composed_paired = Object.fromEntries(Object.keys(cases).map((label) => [label, { throughput: pairedToSingle(label, 'rps'), cpu: pairedToSingle(label, 'cpuUs') }]));
  report.composed = Object.fromEntries(
    Object.entries(composed).map(([label, rs]) => [label, { rps: median(rs.map((r) => r.rps)), cpu_us: median(rs.map((r) => r.cpuUs)), errors: rs.reduce((a, r) => a + r.errors, 0) }]),
  );
  const single = report.composed['single hit'];
  console.log('\ncomposed pages (all fragments cached) against a single hit, edge-cache');
  console.log('page                 req/s   of single   CPU µs/req   of single  non-2xx');
  for (const [label, c] of Object.entries(report.composed)) {
    console.log(`${label.padEnd(16)} ${c.rps.toFixed(0).padStart(8)} ${((c.rps / single.rps) * 100).toFixed(1).padStart(10)}% ${c.cpu_us.toFixed(0).padStart(11)} ${((c.cpu_us / single.cpu_us) * 100).toFixed(1).padStart(10)}% ${String(c.errors).padStart(8)}`);
  }
  console.log('median of per-round ratios to the single hit (throughput, CPU per request):');
  for (const [label, r] of Object.entries(report.composed_paired)) {
    console.log(`  ${label.padEnd(14)} ${(r.throughput * 100).toFixed(1).padStart(6)}%  ${(r.cpu * 100).toFixed(1).padStart(6)}%`);
  }
}

// Stampede: STAMPEDE requests at once on one key, the origin taking
// STAMPEDE_DELAY ms. The bare worker (match, else fetch and put) is what a
// cache without coalescing does.
async function stampede(name, path) {
  const base = (await workers[name].ready).origin;
  const agent = new http.Agent({ keepAlive: true, maxSockets: STAMPEDE });
  const one = () =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      http.get(`${base}${path}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ ms: performance.now() - started, status: res.statusCode }));
      }).on('error', reject);
    });
  const answers = await Promise.all(Array.from({ length: STAMPEDE }, one));
  agent.destroy();
  const ms = answers.map((a) => a.ms).sort((a, b) => a - b);
  const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
  const calls = [...stampedeCalls].filter(([url]) => url.startsWith(path.split('?')[0])).reduce((n, [, c]) => n + c, 0);
  return { origin_calls: calls, p50_ms: at(0.5), p99_ms: at(0.99), non_200: answers.filter((a) => a.status !== 200).length };
}
report.stampede = { requests: STAMPEDE, origin_delay_ms: STAMPEDE_DELAY };
report.stampede.cold = {
  'edge-cache (Rust/wasm)': await stampede('edge-cache (Rust/wasm)', '/stampede/cold-edge'),
  'bare JS worker': await stampede('bare JS worker', '/stampede/cold-bare'),
};
// An expired key: one request stores it already stale, then the burst.
const expiredBase = (await workers['edge-cache (Rust/wasm)'].ready).origin;
await (await fetch(`${expiredBase}/stampede/expired-edge`)).text();
await new Promise((r) => setTimeout(r, 300));
stampedeCalls.set('/stampede/expired-edge', 0);
report.stampede.expired = { 'edge-cache (Rust/wasm)': await stampede('edge-cache (Rust/wasm)', '/stampede/expired-edge') };
console.log(`\nstampede: ${STAMPEDE} requests at once, origin answers in ${STAMPEDE_DELAY} ms`);
console.log('case     worker                    origin calls   p50 ms   p99 ms  non-200');
for (const [kind, byWorker] of Object.entries({ cold: report.stampede.cold, expired: report.stampede.expired })) {
  for (const [name, r] of Object.entries(byWorker)) {
    console.log(`${kind.padEnd(8)} ${name.padEnd(24)} ${String(r.origin_calls).padStart(13)} ${r.p50_ms.toFixed(0).padStart(8)} ${r.p99_ms.toFixed(0).padStart(8)} ${String(r.non_200).padStart(8)}`);
  }
}

mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/latest.json', JSON.stringify(report, null, 2));

for (const mf of Object.values(workers)) await mf.dispose();
origin.close();
