// The commands a user runs: `wrangler dev` on the bundled demo origin (what
// `make dev` starts) and `wrangler deploy --dry-run`, both offline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep, freePort } from './harness.js';

const env = { ...process.env, WRANGLER_SEND_METRICS: 'false' };
const state = mkdtempSync(join(tmpdir(), 'edge-cache-dev-'));
let dev;
let base;

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // As `make dev` starts it: composition on for the demo page.
  dev = spawn('npx', ['wrangler', 'dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', state], {
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  dev.stdout.on('data', (d) => (log += d));
  dev.stderr.on('data', (d) => (log += d));
  for (let i = 0; i < 600; i++) {
    try {
      await fetch(`${base}/styles.css`);
      return;
    } catch {
      await sleep(500);
    }
  }
  throw new Error(`wrangler dev did not start:\n${log}`);
});

after(() => {
  if (dev) process.kill(-dev.pid, 'SIGTERM');
  rmSync(state, { recursive: true, force: true });
});

async function get(path, headers = {}) {
  const res = await fetch(`${base}${path}`, { headers, redirect: 'manual' });
  return { status: res.status, headers: res.headers, body: await res.text(), cacheStatus: res.headers.get('cache-status') };
}

async function untilHit(path, headers) {
  for (let i = 0; i < 100; i++) {
    const res = await get(path, headers);
    if (/; hit/.test(res.cacheStatus)) return res;
    await sleep(50);
  }
  throw new Error(`${path} never became a hit`);
}

test('wrangler dev serves the demo origin: a miss, then a hit with Age', async () => {
  const miss = await get('/');
  assert.equal(miss.status, 200);
  assert.match(miss.body, /edge-cache demo origin/);
  assert.equal(miss.cacheStatus, 'edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60');
  const hit = await untilHit('/');
  assert.match(hit.body, /edge-cache demo origin/);
  assert.ok(hit.headers.get('age') !== null);
  assert.equal(hit.headers.get('cache-control'), 'public, max-age=60');
});

test('the demo origin shows a variant, a private page and a revalidated page', async () => {
  const de = { 'accept-language': 'de' };
  assert.match((await get('/products.json', de)).cacheStatus, /fwd=uri-miss/);
  assert.equal((await untilHit('/products.json', de)).headers.get('vary'), 'Accept-Language');
  assert.match((await get('/products.json', { 'accept-language': 'fr' })).cacheStatus, /fwd=vary-miss/);
  assert.match((await get('/private')).cacheStatus, /detail=private$/);
  await get('/revalidate');
  await sleep(200);
  assert.match((await get('/revalidate')).cacheStatus, /fwd=stale; fwd-status=304; stored/);
});

test('the demo origin composes a page from fragments, and the admin page is served', async () => {
  for (const encoding of ['identity', 'gzip, br']) {
    const page = await get('/composed', { 'accept-encoding': encoding });
    assert.equal(page.status, 200, encoding);
    assert.match(page.body, /header fragment/);
    assert.match(page.body, /Widget: 9\.99/);
    assert.match(page.body, /Banner fragment/);
    assert.match(page.body, /esi:except<\/code> shows instead/);
    assert.match(page.body, /Composed for a <strong>desktop<\/strong> client in <strong>US<\/strong>/);
    assert.doesNotMatch(page.body, /<esi:|Without ESI/);
    assert.match(page.cacheStatus, /esi-fragments=4/);
  }
  const admin = await get('/_admin/');
  assert.equal(admin.status, 200);
  assert.match(admin.headers.get('content-security-policy'), /default-src 'none'/);
});

test('wrangler deploy --dry-run builds the deployable bundle offline', async () => {
  const out = mkdtempSync(join(tmpdir(), 'edge-cache-dist-'));
  try {
    await promisify(execFile)('npx', ['wrangler', 'deploy', '--dry-run', '--outdir', out], { env, timeout: 300_000 });
    assert.ok(existsSync(join(out, 'index.js')));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
