// Bad configuration, a dead, slow or resetting origin, and hostile origin
// headers: each gets a clear answer, never a wrong or leaked response.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin, startWorker, freePort } from './harness.js';

const cleanup = [];
after(async () => {
  for (const dispose of cleanup) await dispose();
});
async function worker(vars) {
  const w = await startWorker(vars);
  cleanup.push(w.dispose);
  return w;
}
async function origin() {
  const o = await startOrigin();
  cleanup.push(o.close);
  return o;
}
test('an invalid variable gives a 500 that names it', async () => {
  for (const [name, value] of [['ORIGIN', 'ftp://example.com'], ['ORIGIN_TIMEOUT', 'soon'], ['CACHE_NAME', 'two words']]) {
    const w = await worker({ ORIGIN: 'http://127.0.0.1:1', [name]: value });
    const res = await w.fetch('/');
    assert.equal(res.status, 500);
    assert.match(res.body, new RegExp(`configuration variable ${name} is invalid`));
    assert.equal(res.cacheStatus, 'edge-cache; detail=config-error');
    assert.equal(res.headers.get('cache-control'), 'no-store');
  }
});

test('a dead origin gives a 502', async () => {
  const w = await worker({ ORIGIN: `http://127.0.0.1:${await freePort()}` });
  const res = await w.fetch('/anything');
  assert.equal(res.status, 502);
  assert.equal(res.cacheStatus, 'edge-cache; fwd=uri-miss; detail=origin-unreachable');
});

test('a slow origin gives a 504 after ORIGIN_TIMEOUT', async () => {
  const o = await origin();
  o.route('/slow', 'hang');
  const w = await worker({ ORIGIN: o.url, ORIGIN_TIMEOUT: '1' });
  const started = Date.now();
  const res = await w.fetch('/slow');
  assert.equal(res.status, 504);
  assert.equal(res.cacheStatus, 'edge-cache; fwd=uri-miss; detail=origin-timeout');
  assert.ok(Date.now() - started < 5000);
});

test('an origin that resets the connection gives a 502, and nothing is stored', async () => {
  const o = await origin();
  o.route('/reset', (req, n) => (n === 1 ? 'reset' : { headers: { 'cache-control': 'max-age=60' }, body: 'ok now' }));
  const w = await worker({ ORIGIN: o.url });
  assert.equal((await w.fetch('/reset')).status, 502);
  const second = await w.fetch('/reset');
  assert.equal(second.body, 'ok now');
  assert.match(second.cacheStatus, /fwd=uri-miss/);
});

test('an origin cannot forge the stored metadata record', async () => {
  const o = await origin();
  // A record of the current version, whole (see src/meta.rs).
  const meta = { primary: 'x', stored_at: 0, initial_age: 0, fresh_for: 999999, revalidate: 'WhenStale', shared_with_auth: true, status: 200 };
  const forged = JSON.stringify({ v: 3, record: { response: meta } });
  o.route('/forge', { headers: { 'cache-control': 'no-store', 'x-edge-cache-meta': forged }, body: 'per user' });
  const w = await worker({ ORIGIN: o.url });
  const first = await w.fetch('/forge');
  assert.equal(first.headers.get('x-edge-cache-meta'), null);
  assert.match(first.cacheStatus, /detail=no-store$/);
  await w.fetch('/forge');
  assert.equal(o.calls('/forge').length, 2);
});

test('malformed cache headers from the origin are read safely', async () => {
  const o = await origin();
  o.route('/bad-maxage', { headers: { 'cache-control': 'max-age=banana' }, body: 'x' });
  o.route('/bad-expires', { headers: { expires: 'not a date', etag: '"e"' }, body: 'x' });
  o.route('/huge-maxage', { headers: { 'cache-control': 'max-age=99999999999999999999999' }, body: 'x' });
  const w = await worker({ ORIGIN: o.url });
  assert.match((await w.fetch('/bad-maxage')).cacheStatus, /detail=no-validator$/);
  assert.match((await w.fetch('/bad-expires')).cacheStatus, /stored; ttl=0$/);
  assert.match((await w.fetch('/huge-maxage')).cacheStatus, /stored; ttl=2147483648$/);
});

test('hostile requests get a sane answer', async () => {
  const o = await origin();
  o.route('/q', (req) => ({ headers: { 'cache-control': 'max-age=60' }, body: `len=${req.url.length}` }));
  o.route('/vary-many', { headers: { 'cache-control': 'max-age=60', vary: Array.from({ length: 500 }, (_, i) => `x-h${i}`).join(', ') }, body: 'v' });
  const w = await worker({ ORIGIN: o.url });
  // 1,500 parameters (~14 KB): the runtime itself answers 431 past ~16 KB, as Cloudflare does.
  const query = Array.from({ length: 1_500 }, (_, i) => `p${i}=${i}`).join('&');
  const long = await w.fetch(`/q?${query}`);
  assert.equal(long.status, 200);
  const many = {};
  for (let i = 0; i < 200; i++) many[`x-h${i}`] = 'y'.repeat(100);
  const varied = await w.fetch('/vary-many', { headers: many });
  assert.equal(varied.status, 200);
  await w.stored('/vary-many', many);
  assert.equal(o.calls('/vary-many').length, 1);
});
