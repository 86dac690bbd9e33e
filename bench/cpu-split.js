// Where each worker's CPU per Cache API hit goes, by kind of code: every
// worker's workerd pinned to core 1 and driven at once by one wrk each on
// core 0 (as in run.js's shared-core section), warmed for WARM seconds so
// that V8 has compiled what it will, then sampled with `perf record` for
// SECONDS. Samples are counted per request and sorted into kinds by symbol:
// the worker's own code (JIT: wasm and JavaScript), V8's compilers, V8's
// runtime and builtins (the API calls), workerd and kj (HTTP, the Cache API
// service, promises), the allocator, the kernel and libc, and GC.
//
//   make build && node bench/cpu-split.js
//   WARM=40 SECONDS=10 node bench/cpu-split.js
//
// Needs `perf` (Debian: linux-perf) and `taskset`, and two cores.
import http from 'node:http';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Miniflare } from 'miniflare';

const WARM = Number(process.env.WARM ?? 30);
const SECONDS = Number(process.env.SECONDS ?? 10);
const HZ = 499;
for (const tool of ['perf', 'taskset', 'wrk']) {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' });
  } catch (e) {
    if (e.code === 'ENOENT') {
      console.error(`${tool} is not installed (Debian: linux-perf, util-linux, wrk)`);
      process.exit(2);
    }
  }
}
execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

const BODY = 'x'.repeat(4096);
const origin = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=86400', etag: '"bench"', 'cache-tag': 'bench,product-1,category-2,home' });
  res.end(BODY);
});
await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve));
const common = {
  host: '127.0.0.1',
  port: 0,
  modules: true,
  compatibilityDate: '2026-04-20',
  compatibilityFlags: ['enable_request_signal'],
  bindings: { ORIGIN: `http://127.0.0.1:${origin.address().port}`, ADMIN_TOKEN: 'x'.repeat(32), HOT_TIER_BYTES: '0' },
};
const wasm = { scriptPath: 'build/index.js', modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }], kvNamespaces: ['CACHE_KV'] };
const scripts = {
  'bare JS worker': { scriptPath: 'bench/bare-worker.js' },
  'JS worker, rebuilt': { scriptPath: 'bench/rebuild-worker.js' },
  "JS, edge-cache's calls": { scriptPath: 'bench/mimic-worker.js' },
  'edge-cache, hot tier off': wasm,
};

const workerds = () => {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-x', 'workerd'], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
  } catch {
    return [];
  }
};
const workers = {};
for (const [name, options] of Object.entries(scripts)) {
  const before = new Set(workerds());
  const mf = new Miniflare({ ...common, ...options });
  const url = `${(await mf.ready).origin}/bench/hit`;
  const pid = workerds().find((p) => !before.has(p));
  execFileSync('taskset', ['-a', '-p', '-c', '1', String(pid)], { stdio: 'ignore' });
  for (let i = 0; i < 20; i++) {
    const res = await fetch(url);
    await res.text();
    if (i > 0 && (res.headers.get('cache-status')?.includes('; hit') || !name.startsWith('edge-cache'))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  workers[name] = { mf, url, pid };
}

const wrk = (url, seconds) =>
  new Promise((resolve) => {
    const child = spawn('taskset', ['-c', '0', 'wrk', '-t', '1', '-c', '8', '-d', `${seconds}s`, url]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', () => resolve(Number(out.match(/(\d+) requests in/)[1])));
  });
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

const names = Object.keys(workers);
console.error(`warming all workers for ${WARM}s`);
await Promise.all(names.map((n) => wrk(workers[n].url, WARM)));
const files = names.map((_, i) => `/tmp/edge-cache-cpu-split-${process.pid}-${i}.perf`);
const cpuBefore = names.map((n) => cpuSeconds(workers[n].pid));
const perfs = names.map((n, i) => {
  const child = spawn('perf', ['record', '-q', '-F', String(HZ), '-o', files[i], '-p', String(workers[n].pid), '--', 'sleep', String(SECONDS)], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('close', resolve));
});
console.error(`measuring for ${SECONDS}s`);
const requests = await Promise.all(names.map((n) => wrk(workers[n].url, SECONDS)));
await Promise.all(perfs);

// perf report's lines: "  12.34%  567  [k] symbol" (with -n and --sort sym).
const KINDS = ['worker code (JIT: wasm, JS)', 'V8 compilers', 'V8 runtime, builtins', 'workerd, kj', 'allocator', 'kernel, libc', 'GC', 'other'];
function kind(symbol, where) {
  if (where === '[k]') return 'kernel, libc';
  if (/^0x|^JS:|\[JIT\]/.test(symbol)) return KINDS[0];
  if (/compiler::|Compil|maglev|turboshaft/i.test(symbol)) return 'V8 compilers';
  if (/Scaveng|Heap::|MarkCompact|Sweep|cppgc|Marking/.test(symbol)) return 'GC';
  if (/tcmalloc|TCMalloc/.test(symbol)) return 'allocator';
  if (/^(v8::|Builtins_)/.test(symbol)) return 'V8 runtime, builtins';
  if (/^(workerd::|kj::|capnp::|_ZN7workerd|_ZN2kj|_ZZN7workerd)/.test(symbol)) return 'workerd, kj';
  if (/^(__mem|__str|_int_|__lll|pthread|epoll|__libc)/.test(symbol)) return 'kernel, libc';
  return 'other';
}
const split = {};
names.forEach((name, i) => {
  const out = execFileSync('perf', ['report', '-i', files[i], '--no-children', '--sort', 'sym', '-g', 'none', '--stdio', '-n'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const us = Object.fromEntries(KINDS.map((k) => [k, 0]));
  for (const line of out.split('\n')) {
    const m = /^\s*[\d.]+%\s+(\d+)\s+(\[[.k]\])\s+(.*)$/.exec(line);
    if (m) us[kind(m[3], m[2])] += (Number(m[1]) / HZ / requests[i]) * 1e6;
  }
  us.total = ((cpuSeconds(workers[name].pid) - cpuBefore[i]) / requests[i]) * 1e6;
  split[name] = { requests: requests[i], us };
  execFileSync('rm', ['-f', files[i]]);
});

const bare = split['bare JS worker'];
console.log(`\nCPU per Cache API hit by kind of code, µs (all workers sharing one core, ${SECONDS}s after ${WARM}s of warm-up):`);
console.log(`${''.padEnd(28)}${names.map((n) => n.padStart(26)).join('')}`);
for (const k of [...KINDS, 'total']) {
  console.log(`${(k === 'total' ? 'total (from /proc)' : k).padEnd(28)}${names.map((n) => split[n].us[k].toFixed(0).padStart(26)).join('')}`);
}
console.log(`${'throughput vs bare'.padEnd(28)}${names.map((n) => `${((split[n].requests / bare.requests) * 100).toFixed(1)}%`.padStart(26)).join('')}`);
for (const { mf } of Object.values(workers)) await mf.dispose();
origin.close();
