// Purge through KV (issue 9): tags, URLs, prefixes and everything, hard and
// soft, the admin API's door, auth and errors, warm, and two locations that
// share only KV. Each worker reads purge records every second here
// (PURGE_REFRESH=1); the worker that receives a purge applies it at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin, startWorker, sleep, IPHONE, DESKTOP } from './harness.js';

const TOKEN = 'e2e-admin-token-0123456789';

let origin;
let worker;
// KV lives outside the repository: test state never belongs in a commit.
const kvDir = mkdtempSync(join(tmpdir(), 'edge-cache-kv-'));
const vars = () => ({ ORIGIN: origin.url, ADMIN_TOKEN: TOKEN, PURGE_REFRESH: '1', COUNTRY_HEADER: 'x-test-country' });
before(async () => {
  origin = await startOrigin();
  worker = await startWorker(vars(), { kvPersist: kvDir });
});
after(async () => {
  await worker?.dispose();
  await origin?.close();
  rmSync(kvDir, { recursive: true, force: true });
});

/** Calls the admin API; `body` is sent as JSON unless it is a string. */
async function admin(w, method, route, body, token = TOKEN) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const init = { method, headers };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await w.fetch(`/_admin${route}`, init);
  let json = null;
  try { json = JSON.parse(res.body); } catch {}
  return { ...res, json };
}
const purge = async (w, body) => {
  const res = await admin(w, 'POST', '/purge', body);
  assert.equal(res.status, 200, res.body);
  return res.json;
};

/** A route that counts its calls into the body, with these headers. */
function counted(path, headers) {
  origin.route(path, (req, n) => ({ headers: { 'cache-control': 'max-age=600', ...headers }, body: `${path} #${n} ${req.headers['cf-device-type'] ?? ''}` }));
}

test('a tag purge covers every URL and variant carrying the tag, from either field, and no other', async () => {
  counted('/t/a', { 'cache-tag': 'Product-7,home' });
  counted('/t/b', { 'surrogate-key': 'shelf product-7' });
  counted('/t/c', { 'cache-tag': 'other' });
  counted('/t/v', { 'cache-tag': 'product-7', vary: 'cf-device-type' });
  for (const path of ['/t/a', '/t/b', '/t/c']) {
    await worker.fetch(path);
    const hit = await worker.stored(path);
    assert.equal(hit.headers.get('cache-tag'), null, 'tags never reach clients');
    assert.equal(hit.headers.get('surrogate-key'), null);
  }
  for (const ua of [IPHONE, DESKTOP]) {
    await worker.fetch('/t/v', { headers: { 'user-agent': ua } });
    await worker.stored('/t/v', { 'user-agent': ua });
  }
  const answer = await purge(worker, { tags: ['PRODUCT-7'] });
  assert.deepEqual(answer.tags, ['product-7']);
  assert.equal(answer.soft, false);
  assert.match(answer.id, /^[0-9a-f]{12}$/);
  assert.equal(answer.propagation_seconds, 61);
  for (const path of ['/t/a', '/t/b']) {
    const res = await worker.fetch(path);
    assert.match(res.cacheStatus, /fwd=uri-miss; fwd-status=200; stored; ttl=600; detail=purged$/, path);
    assert.match(res.body, /#2/);
  }
  for (const ua of [IPHONE, DESKTOP]) {
    const res = await worker.fetch('/t/v', { headers: { 'user-agent': ua } });
    assert.match(res.cacheStatus, /detail=purged/, ua);
  }
  assert.match((await worker.fetch('/t/c')).cacheStatus, /^edge-cache; hit/);
  await worker.stored('/t/a');
  assert.match((await worker.fetch('/t/a')).cacheStatus, /^edge-cache; hit/, 'the refill is not purged again');
  assert.deepEqual(['/t/a', '/t/b', '/t/c', '/t/v'].map((p) => origin.calls(p).length), [2, 2, 1, 4]);
});

test('a URL purge covers its device and country variants and lenient spellings, not its neighbours', async () => {
  origin.route('/u/page', (req, n) => ({ headers: { 'cache-control': 'max-age=600', vary: 'cf-device-type, cf-ipcountry' }, body: `#${n} ${req.headers['cf-device-type']} ${req.headers['cf-ipcountry']}` }));
  counted('/u/page2', {});
  const clients = [[IPHONE, 'DE'], [DESKTOP, 'DE'], [DESKTOP, 'FR']];
  for (const [ua, country] of clients) {
    const headers = { 'user-agent': ua, 'x-test-country': country };
    await worker.fetch('/u/page?b=2&a=1', { headers });
    await worker.stored('/u/page?a=1&b=2', headers);
  }
  await worker.fetch('/u/page2');
  await worker.stored('/u/page2');
  await purge(worker, { urls: ['/U//page?a=1&b=2&utm_source=x'] });
  for (const [ua, country] of clients) {
    const res = await worker.fetch('/u/page?a=1&b=2', { headers: { 'user-agent': ua, 'x-test-country': country } });
    assert.match(res.cacheStatus, /fwd=(uri|vary)-miss; fwd-status=200; stored; ttl=600/, `${ua} ${country}`);
  }
  assert.match((await worker.fetch('/u/page2')).cacheStatus, /^edge-cache; hit/);
  assert.equal(origin.calls('/u/page').length, 6);
});

test('prefix purges match whole segments; host-bound prefixes only their host; everything is everything', async () => {
  const paths = ['/p/blog', '/p/blog/a', '/p/blog/a/b?page=2', '/p/blogger', '/p/shop'];
  for (const path of paths) {
    counted(path.split('?')[0], {});
    await worker.fetch(path);
    await worker.stored(path);
  }
  await purge(worker, { prefixes: ['/p/blog/'] });
  const purged = [];
  for (const path of paths) if (/purged/.test((await worker.fetch(path)).cacheStatus)) purged.push(path);
  assert.deepEqual(purged, ['/p/blog', '/p/blog/a', '/p/blog/a/b?page=2']);
  await purge(worker, { prefixes: ['elsewhere.test/p/shop'] });
  assert.match((await worker.fetch('/p/shop')).cacheStatus, /^edge-cache; hit/);
  await purge(worker, { prefixes: ['shop.test/p/shop'] });
  assert.match((await worker.fetch('/p/shop')).cacheStatus, /purged/);
  await worker.stored('/p/blogger');
  await purge(worker, { everything: true });
  assert.match((await worker.fetch('/p/blogger')).cacheStatus, /purged/);
});

test('a soft purge serves the stored copy at once and revalidates it in the background', async () => {
  origin.route('/soft', (req, n) => (n === 1
    ? { headers: { 'cache-control': 'max-age=600', etag: '"s1"', 'cache-tag': 'soft' }, body: 'original' }
    : { status: 304, headers: { 'cache-control': 'max-age=600', etag: '"s1"' } }));
  await worker.fetch('/soft');
  await worker.stored('/soft');
  const answer = await purge(worker, { tags: ['soft'], soft: true });
  assert.equal(answer.soft, true);
  const soft = await worker.fetch('/soft');
  assert.equal(soft.body, 'original');
  assert.match(soft.cacheStatus, /^edge-cache; hit; ttl=\d+; detail=soft-purged$/);
  await sleep(300);
  assert.equal(origin.calls('/soft').length, 2);
  assert.equal(origin.calls('/soft')[1].headers['if-none-match'], '"s1"');
  const after = await worker.fetch('/soft');
  assert.match(after.cacheStatus, /^edge-cache; hit; ttl=(600|599)$/);
  assert.equal(after.body, 'original');
});

test('a soft purge by URL also serves the stored copy at once where it is received', async () => {
  origin.route('/soft-url', (req, n) => ({ headers: { 'cache-control': 'max-age=600', etag: '"u1"' }, body: `soft url #${n}` }));
  await worker.fetch('/soft-url');
  await worker.stored('/soft-url');
  await purge(worker, { urls: ['/soft-url'], soft: true });
  const soft = await worker.fetch('/soft-url');
  assert.equal(soft.body, 'soft url #1');
  assert.match(soft.cacheStatus, /detail=soft-purged/);
  for (let i = 0; i < 50 && origin.calls('/soft-url').length < 2; i++) await sleep(20);
  assert.equal(origin.calls('/soft-url')[1].headers['if-none-match'], '"u1"');
});

test('every spelling of the admin prefix reaches the admin code, never the origin or the cache', async () => {
  origin.route('/_admin/purge', { headers: { 'cache-control': 'max-age=600' }, body: 'ORIGIN' });
  const spellings = ['/%5Fadmin/purge', '/_admin/../_admin/purge', '//_admin/purge', '/%5fADMIN/purge', '/_admin;x/purge', '/x/../_admin/purge'];
  for (const [i, path] of spellings.entries()) {
    // Sent byte for byte: a URL parser would resolve some spellings first.
    const res = await worker.raw(path, [['Authorization', `Bearer ${TOKEN}`]], { method: 'POST', body: `{"tags": ["door${i}"]}` });
    assert.equal(res.status, 200, `${path}: ${res.body}`);
    assert.equal(res.headers['cache-control'], 'no-store');
    const get = await worker.raw(path, []);
    assert.notEqual(get.body.toString(), 'ORIGIN', path);
  }
  assert.equal(origin.calls('/_admin/purge').length, 0);
});

test('auth and bad input: 401, 400 naming the problem, 405, 413, 404; nothing purged', async () => {
  counted('/keep', { 'cache-tag': 'keep' });
  await worker.fetch('/keep');
  await worker.stored('/keep');
  for (const token of [null, 'wrong-token-0123456789abc']) {
    const res = await admin(worker, 'POST', '/purge', { tags: ['keep'] }, token);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate'), /^Bearer/);
  }
  const bad = [
    ['{"tags": ["keep"', /invalid request body/],
    ['{"tags": "keep"}', /invalid type/],
    ['{"tagz": ["keep"]}', /unknown field/],
    ['{}', /nothing to purge/],
    [JSON.stringify({ tags: Array.from({ length: 101 }, (_, i) => `t${i}`) }), /at most 100/],
    ['{"tags": ["has space"]}', /visible ASCII/],
    ['{"urls": ["ftp://x/y"]}', /http\(s\)/],
    // Not the default port's entry: `http` reads a port past u16 as none.
    ['{"urls": ["http://shop.test:-8080/y"]}', /port past 65535/],
    ['{"urls": ["http://shop.test:65536/y"]}', /port past 65535/],
  ];
  for (const [body, says] of bad) {
    const res = await admin(worker, 'POST', '/purge', body);
    assert.equal(res.status, 400, body);
    assert.match(res.json.error, says, body);
  }
  assert.equal((await admin(worker, 'POST', '/purge', JSON.stringify({ tags: ['x'.repeat(300 * 1024)] }))).status, 413);
  assert.equal((await admin(worker, 'GET', '/purge')).status, 405);
  assert.equal((await admin(worker, 'GET', '/nothing')).status, 404);
  assert.match((await worker.fetch('/keep')).cacheStatus, /^edge-cache; hit/);
  assert.equal(origin.calls('/keep').length, 1);
});

test('without ADMIN_TOKEN the API is shut and says so', async () => {
  const shut = await startWorker({ ORIGIN: origin.url });
  try {
    const res = await admin(shut, 'POST', '/purge', { everything: true });
    assert.equal(res.status, 503);
    assert.match(res.json.error, /ADMIN_TOKEN/);
    const short = await startWorker({ ORIGIN: origin.url, ADMIN_TOKEN: 'short' });
    assert.equal((await admin(short, 'POST', '/purge', { everything: true }, 'short')).status, 503);
    await short.dispose();
  } finally {
    await shut.dispose();
  }
});

test('repeated purges of one target within a second are one KV write, timed when the second is up', async () => {
  counted('/paced', { 'cache-tag': 'paced' });
  const first = await purge(worker, { tags: ['paced'] });
  assert.equal(first.paced, false);
  await worker.fetch('/paced'); // fetched between the purges: the repeat must cover it
  await worker.stored('/paced');
  const repeats = await Promise.all([1, 2, 3].map(() => purge(worker, { tags: ['paced'] })));
  assert.ok(repeats.every((r) => r.paced && r.id === repeats[0].id), JSON.stringify(repeats));
  assert.ok(repeats[0].at >= first.at + 1000);
  const list = await admin(worker, 'GET', '/purges');
  assert.equal(list.json.purges.filter((p) => p.tags.includes('paced')).length, 2);
  assert.match((await worker.fetch('/paced')).cacheStatus, /purged/);
});

test('GET /_admin/purges lists recent purges; warm stores entries per device ahead of traffic', async () => {
  const done = await purge(worker, { tags: ['listed'], soft: true });
  const list = await admin(worker, 'GET', '/purges');
  assert.equal(list.status, 200);
  assert.equal(list.json.purges[0].id, done.id);
  assert.deepEqual(list.json.purges[0].tags, ['listed']);
  assert.equal(list.json.purges[0].soft, true);
  origin.route('/warm', (req, n) => ({ headers: { 'cache-control': 'max-age=600', vary: 'cf-device-type' }, body: `#${n} ${req.headers['cf-device-type']}` }));
  const warm = await admin(worker, 'POST', '/warm', { urls: ['/warm', 'http://shop.test/warm'], devices: ['mobile', 'desktop'] });
  assert.equal(warm.status, 200, warm.body);
  assert.equal(warm.json.results.length, 2, 'one URL, named twice');
  assert.equal(origin.calls('/warm').length, 2);
  const phone = await worker.fetch('/warm', { headers: { 'user-agent': IPHONE } });
  assert.match(phone.cacheStatus, /^edge-cache; hit/);
  assert.match(phone.body, /mobile/);
  assert.equal((await admin(worker, 'POST', '/warm', { urls: ['https://elsewhere.test/x'] })).status, 400);
  assert.equal((await admin(worker, 'POST', '/warm', { urls: ['/%5Fadmin/purge'] })).status, 400);
});

test('two locations that share only KV: a purge at one reaches the other within PURGE_REFRESH', async () => {
  const other = await startWorker(vars(), { kvPersist: kvDir });
  try {
    counted('/two', { 'cache-tag': 'two' });
    for (const w of [worker, other]) {
      await w.fetch('/two');
      await w.stored('/two');
    }
    assert.equal(origin.calls('/two').length, 2, 'each location has its own Cache API');
    await purge(worker, { tags: ['two'] });
    const purgedAt = Date.now();
    assert.match((await worker.fetch('/two')).cacheStatus, /purged/, 'at once where it was received');
    let seenAfter = null;
    while (Date.now() - purgedAt < 5000) {
      const res = await other.fetch('/two');
      if (/purged/.test(res.cacheStatus)) {
        seenAfter = Date.now() - purgedAt;
        break;
      }
      await sleep(50);
    }
    assert.ok(seenAfter !== null, 'the other location never saw the purge');
    console.log(`# propagation to a second location: ${seenAfter} ms (PURGE_REFRESH=1)`);
    assert.equal(origin.calls('/two').length, 4);
  } finally {
    await other.dispose();
  }
});

test('a restarted worker reads the purges persisted in KV', async () => {
  counted('/restart', { 'cache-tag': 'restart' });
  await worker.fetch('/restart');
  await worker.stored('/restart');
  await purge(worker, { tags: ['restart'], soft: true });
  await worker.dispose();
  worker = await startWorker(vars(), { kvPersist: kvDir });
  const list = await admin(worker, 'GET', '/purges');
  assert.ok(list.json.purges.some((p) => p.tags.includes('restart')));
});

test('review: odd spellings of the page redirect to ADMIN_PATH/, %u spellings are ours, quotes in URL purges match', async () => {
  for (const path of ['//evil.example/..;/_admin/', '/%5Fadmin/', '/_ADMIN/index.html']) {
    const res = await worker.raw(path, []);
    assert.equal(res.status, 308, path);
    assert.match(res.headers.location, /^\/_admin\/(index\.html)?$/, path);
  }
  origin.route('/_admin/purges', { headers: { 'cache-control': 'max-age=600' }, body: 'ORIGIN' });
  for (const path of ['/%u005Fadmin/purges', '/_admin%u002Fpurges']) {
    const res = await worker.raw(path, []);
    assert.notEqual(res.body.toString(), 'ORIGIN', path);
    assert.equal(res.headers['cache-status'], 'edge-cache; detail=admin', path);
  }
  assert.equal(origin.calls('/_admin/purges').length, 0);
  counted('/quoted', {});
  await worker.fetch("/quoted?q='x'");
  await worker.stored('/quoted?q=%27x%27');
  await purge(worker, { urls: ["/quoted?q='x'"] });
  assert.match((await worker.fetch("/quoted?q='x'")).cacheStatus, /fwd=uri-miss/);
});

test('review: warm fetches in the admin request\'s country', async () => {
  origin.route('/warm-country', (req) => ({ headers: { 'cache-control': 'max-age=600', vary: 'cf-ipcountry' }, body: `country ${req.headers['cf-ipcountry']}` }));
  const warm = await worker.fetch('/_admin/warm', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'x-test-country': 'DE' }, body: '{"urls": ["/warm-country"]}' });
  assert.equal(warm.status, 200, warm.body);
  const de = await worker.fetch('/warm-country', { headers: { 'x-test-country': 'DE' } });
  assert.match(de.cacheStatus, /^edge-cache; hit/);
  assert.equal(de.body, 'country DE');
});

test('review: with KV unreadable, entries are revalidated first and a burst still makes one origin request', async () => {
  // A CACHE_KV binding whose every call fails.
  const broken = await startWorker({ ORIGIN: origin.url, ADMIN_TOKEN: TOKEN, CACHE_KV: {} }, { kv: false });
  try {
    origin.route('/kvdown', async (req, n) => {
      await sleep(300);
      if (req.headers['if-none-match'] === '"k"') return { status: 304, headers: { 'cache-control': 'max-age=600', etag: '"k"' } };
      return { headers: { 'cache-control': 'max-age=600', etag: '"k"' }, body: 'kv down' };
    });
    await broken.fetch('/kvdown');
    await sleep(300); // the fill's background write
    const burst = await Promise.all(Array.from({ length: 10 }, () => broken.fetch('/kvdown')));
    assert.ok(burst.every((r) => r.status === 200 && r.body === 'kv down'));
    assert.equal(origin.calls('/kvdown').length, 2, 'the fill, then one revalidation for the burst');
    const res = await admin(broken, 'POST', '/purge', { tags: ['x'] });
    assert.equal(res.status, 503);
    assert.match(res.json.error, /did not happen/);
  } finally {
    await broken.dispose();
  }
});

test('review 2: an oversized admin body is refused unread and the connection stays usable; non-ASCII URL purges match', async () => {
  const { default: http } = await import('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const send = (method, path, body, headers = {}) => new Promise((resolve, reject) => {
    const req = http.request(new URL(path, worker.url), { method, agent, headers: { host: 'shop.test', ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
  try {
    const big = JSON.stringify({ tags: ['x'.repeat(400 * 1024)] });
    // Refused before the body is read: the runtime answers 413 and may close
    // the connection while the client still writes (a reset, as HTTP allows).
    const refused = await send('POST', '/_admin/purge', big, { authorization: `Bearer ${TOKEN}`, 'content-length': String(Buffer.byteLength(big)) })
      .catch((e) => ({ status: e.code }));
    assert.ok([413, 'ECONNRESET', 'EPIPE'].includes(refused.status), String(refused.status));
    const next = await send('POST', '/_admin/purge', '{"tags": ["after-413"]}', { authorization: `Bearer ${TOKEN}` });
    assert.equal(next.status, 200, next.body);
  } finally {
    agent.destroy();
  }
  counted('/caf%C3%A9', {});
  await worker.fetch('/café');
  await worker.stored('/caf%C3%A9');
  await purge(worker, { urls: ['/café'] });
  assert.match((await worker.fetch('/café')).cacheStatus, /fwd=uri-miss/);
});
