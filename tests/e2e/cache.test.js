// RFC 9111 shared-cache behaviour of the real worker in workerd, asserted as a
// client sees it: status, body, headers, and how often the origin was asked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin, startWorker, sleep } from './harness.js';

let origin;
let worker;
before(async () => {
  origin = await startOrigin();
  worker = await startWorker({ ORIGIN: origin.url });
});
after(async () => {
  await worker?.dispose();
  await origin?.close();
});

const cacheable = (body, extra = {}) => ({ headers: { 'cache-control': 'max-age=60', ...extra }, body });

test('a miss is stored and the next request is a hit with Age and Date', async () => {
  origin.route('/basic', cacheable('hello', { date: new Date().toUTCString(), 'x-origin': 'yes' }));
  const miss = await worker.fetch('/basic?x=1');
  assert.equal(miss.status, 200);
  assert.equal(miss.body, 'hello');
  // The origin's Date was set before the request: a second boundary in between is one second of age.
  assert.match(miss.cacheStatus, /^edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=(59|60)$/);
  await worker.stored('/basic?x=1');
  // `stored` read it from the Cache API, which put it in the hot tier.
  const hit = await worker.fetch('/basic?x=1');
  assert.equal(hit.body, 'hello');
  assert.match(hit.cacheStatus, /^edge-cache; hit; ttl=(58|59|60); detail=memory$/);
  assert.match(hit.headers.get('age'), /^[0-2]$/);
  assert.ok(hit.headers.get('date'));
  assert.equal(hit.headers.get('x-origin'), 'yes');
  assert.equal(hit.headers.get('cache-control'), 'max-age=60');
  assert.equal(hit.headers.get('x-edge-cache-meta'), null);
  assert.equal(origin.calls('/basic').length, 1);
  // The query is part of the key.
  // The same origin Date again: by now a second boundary may have passed.
  assert.match((await worker.fetch('/basic?x=2')).cacheStatus, /^edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=(59|60)$/);
  assert.equal(origin.calls('/basic').length, 2);
});

test('Age includes the age the origin reported (RFC 9111 §4.2.3)', async () => {
  origin.route('/aged', cacheable('x', { age: '30' }));
  await worker.fetch('/aged');
  const hit = await worker.stored('/aged');
  assert.ok(Number(hit.headers.get('age')) >= 30);
  assert.match(hit.cacheStatus, /ttl=(29|30)$/);
});

test('HEAD is answered from the stored GET', async () => {
  origin.route('/head', cacheable('full body'));
  const first = await worker.fetch('/head', { method: 'HEAD' });
  assert.equal(first.body, '');
  assert.equal(origin.calls('/head')[0].method, 'GET');
  await worker.stored('/head');
  const head = await worker.fetch('/head', { method: 'HEAD' });
  assert.match(head.cacheStatus, /hit/);
  assert.equal(head.body, '');
  assert.equal((await worker.fetch('/head')).body, 'full body');
  assert.equal(origin.calls('/head').length, 1);
});

test('other methods are forwarded with body and headers, and a successful one invalidates', async () => {
  origin.route('/item', (req) =>
    req.method === 'GET'
      ? cacheable(`item ${origin.calls('/item').length}`)
      : { status: 201, headers: { location: '/list', 'content-location': 'http://elsewhere.test/x' }, body: `got ${req.body}` },
  );
  origin.route('/list', (req, n) => cacheable(`list ${n}`));
  await worker.fetch('/item');
  await worker.fetch('/list');
  await worker.stored('/item');
  await worker.stored('/list');
  const post = await worker.fetch('/item', { method: 'POST', body: 'payload', headers: { 'x-client': 'c1' } });
  assert.equal(post.status, 201);
  assert.equal(post.body, 'got payload');
  assert.equal(post.cacheStatus, 'edge-cache; fwd=method; fwd-status=201');
  const seenPost = origin.calls('/item').find((r) => r.method === 'POST');
  assert.equal(seenPost.headers['x-client'], 'c1');
  // The target and the same-origin Location are invalidated (§4.4).
  assert.match((await worker.fetch('/item')).cacheStatus, /fwd=uri-miss/);
  assert.match((await worker.fetch('/list')).cacheStatus, /fwd=uri-miss/);
});

test('a failed unsafe request invalidates nothing', async () => {
  origin.route('/keep', (req) => (req.method === 'GET' ? cacheable('kept') : { status: 500, body: 'nope' }));
  await worker.fetch('/keep');
  await worker.stored('/keep');
  assert.equal((await worker.fetch('/keep', { method: 'DELETE' })).status, 500);
  assert.match((await worker.fetch('/keep')).cacheStatus, /hit/);
  assert.equal(origin.calls('/keep').filter((r) => r.method === 'GET').length, 1);
});

for (const [name, headers, detail, status = 200] of [
  ['no-store', { 'cache-control': 'no-store, max-age=60' }, 'no-store'],
  ['private', { 'cache-control': 'private, max-age=60' }, 'private'],
  ['no explicit freshness', {}, 'no-freshness'],
  ['Vary: *', { 'cache-control': 'max-age=60', vary: '*' }, 'vary-star'],
  ['a 5xx without explicit freshness', { 'last-modified': 'Tue, 01 Jan 2019 00:00:00 GMT' }, 'no-freshness', 503],
]) {
  test(`${name} is not stored, and Cache-Status says why`, async () => {
    const path = `/not-stored-${detail}-${name.length}`;
    origin.route(path, { status, headers, body: 'x' });
    const first = await worker.fetch(path);
    assert.match(first.cacheStatus, new RegExp(`detail=${detail}$`));
    await sleep(50);
    await worker.fetch(path);
    assert.equal(origin.calls(path).length, 2);
  });
}

test('a 5xx the origin marks cacheable is stored', async () => {
  origin.route('/err', { status: 503, headers: { 'cache-control': 'max-age=30' }, body: 'down' });
  await worker.fetch('/err');
  const hit = await worker.stored('/err');
  assert.equal(hit.status, 503);
  assert.equal(hit.body, 'down');
  assert.equal(origin.calls('/err').length, 1);
});

test('s-maxage wins over max-age, and Expires with Date gives freshness', async () => {
  origin.route('/smax', cacheable('x', { 'cache-control': 'max-age=5, s-maxage=120' }));
  assert.match((await worker.fetch('/smax')).cacheStatus, /ttl=120$/);
  const now = Date.now();
  origin.route('/expires', {
    headers: { date: new Date(now).toUTCString(), expires: new Date(now + 90_000).toUTCString() },
    body: 'x',
  });
  assert.match((await worker.fetch('/expires')).cacheStatus, /stored; ttl=(89|90)$/);
  await worker.stored('/expires');
  assert.equal(origin.calls('/expires').length, 1);
});

test('CDN-Cache-Control and Surrogate-Control govern this cache and never reach the client', async () => {
  origin.route('/cdn', { headers: { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=90' }, body: 'x' });
  const miss = await worker.fetch('/cdn');
  assert.match(miss.cacheStatus, /stored; ttl=90$/);
  assert.equal(miss.headers.get('cdn-cache-control'), null);
  const hit = await worker.stored('/cdn');
  assert.equal(hit.headers.get('cache-control'), 'no-store');
  assert.equal(hit.headers.get('cdn-cache-control'), null);
  origin.route('/surrogate', { headers: { 'cache-control': 'private', 'surrogate-control': 'max-age=45' }, body: 'x' });
  const s = await worker.fetch('/surrogate');
  assert.match(s.cacheStatus, /stored; ttl=45$/);
  assert.equal(s.headers.get('surrogate-control'), null);
  origin.route('/cdn-no-store', { headers: { 'cache-control': 'max-age=60', 'cdn-cache-control': 'no-store' }, body: 'x' });
  assert.match((await worker.fetch('/cdn-no-store')).cacheStatus, /detail=no-store$/);
});

test('Authorization: stored and served only when the response allows sharing (§3.5)', async () => {
  origin.route('/auth-private', cacheable('secret'));
  const a = await worker.fetch('/auth-private', { headers: { authorization: 'Bearer a' } });
  assert.match(a.cacheStatus, /detail=authorization$/);
  await sleep(50);
  await worker.fetch('/auth-private', { headers: { authorization: 'Bearer a' } });
  assert.equal(origin.calls('/auth-private').length, 2);
  // An anonymous entry does not answer an authenticated request.
  await worker.fetch('/auth-private');
  await worker.stored('/auth-private');
  const bypass = await worker.fetch('/auth-private', { headers: { authorization: 'Bearer a' } });
  assert.match(bypass.cacheStatus, /^edge-cache; fwd=bypass; fwd-status=200; detail=authorization$/);
  assert.equal(origin.calls('/auth-private').length, 4);

  origin.route('/auth-public', cacheable('shared', { 'cache-control': 'public, max-age=60' }));
  await worker.fetch('/auth-public', { headers: { authorization: 'Bearer a' } });
  const hit = await worker.stored('/auth-public', { authorization: 'Bearer b' });
  assert.equal(hit.body, 'shared');
  assert.equal(origin.calls('/auth-public').length, 1);

  // s-maxage and must-revalidate allow sharing too.
  for (const [path, cc] of [['/auth-smax', 's-maxage=60'], ['/auth-mr', 'must-revalidate, max-age=60']]) {
    origin.route(path, cacheable('shared', { 'cache-control': cc }));
    await worker.fetch(path, { headers: { authorization: 'Bearer a' } });
    assert.equal((await worker.stored(path, { authorization: 'Bearer b' })).body, 'shared');
    assert.equal(origin.calls(path).length, 1, path);
  }
});

test('Vary selects the variant; each variant is stored on its own', async () => {
  origin.route('/vary', (req) => cacheable(`lang=${req.headers['accept-language'] ?? ''}`, { vary: 'Accept-Language' }));
  const de = { 'accept-language': 'de' };
  const fr = { 'accept-language': 'fr' };
  assert.match((await worker.fetch('/vary', { headers: de })).cacheStatus, /fwd=uri-miss/);
  await worker.stored('/vary', de);
  assert.match((await worker.fetch('/vary', { headers: fr })).cacheStatus, /fwd=vary-miss/);
  await worker.stored('/vary', fr);
  const deHit = await worker.fetch('/vary', { headers: de });
  assert.equal(deHit.body, 'lang=de');
  assert.equal(deHit.headers.get('vary'), 'Accept-Language');
  assert.equal((await worker.fetch('/vary', { headers: fr })).body, 'lang=fr');
  assert.equal(origin.calls('/vary').length, 2);
});

test('a client conditional request on a fresh entry gets a 304 from the cache', async () => {
  origin.route('/cond', cacheable('body', { etag: '"v1"', 'last-modified': 'Tue, 01 Jan 2030 00:00:00 GMT' }));
  await worker.fetch('/cond');
  await worker.stored('/cond');
  const inm = await worker.fetch('/cond', { headers: { 'if-none-match': '"v1"' } });
  assert.equal(inm.status, 304);
  assert.equal(inm.body, '');
  assert.equal(inm.headers.get('etag'), '"v1"');
  assert.match(inm.cacheStatus, /hit/);
  const ims = await worker.fetch('/cond', { headers: { 'if-modified-since': 'Wed, 01 Jan 2031 00:00:00 GMT' } });
  assert.equal(ims.status, 304);
  assert.equal((await worker.fetch('/cond', { headers: { 'if-none-match': '"v0"' } })).status, 200);
  assert.equal(origin.calls('/cond').length, 1);
});

test('If-None-Match: * gets a 304 from a stored 200 without an ETag (RFC 9110 §13.1.2)', async () => {
  origin.route('/cond-any', cacheable('body'));
  await worker.fetch('/cond-any');
  await worker.stored('/cond-any');
  const any = await worker.fetch('/cond-any', { headers: { 'if-none-match': '*' } });
  assert.equal(any.status, 304);
  assert.equal(any.body, '');
  assert.match(any.cacheStatus, /hit/);
  assert.equal((await worker.fetch('/cond-any', { headers: { 'if-none-match': '"x"' } })).status, 200);
  assert.equal(origin.calls('/cond-any').length, 1);
});

test('If-None-Match is read tag by tag: commas inside a tag, and unquoted tags as origins send them', async () => {
  origin.route('/tag-comma', cacheable('body', { etag: '"a,b"' }));
  origin.route('/tag-bare', cacheable('body', { etag: 'abc123' }));
  for (const path of ['/tag-comma', '/tag-bare']) {
    await worker.fetch(path);
    await worker.stored(path);
  }
  const status = async (path, inm) => (await worker.fetch(path, { headers: { 'if-none-match': inm } })).status;
  assert.equal(await status('/tag-comma', '"a,b"'), 304);
  assert.equal(await status('/tag-comma', '"x,*,y"'), 200);
  assert.equal(await status('/tag-comma', '"a", "b"'), 200);
  assert.equal(await status('/tag-bare', 'abc123'), 304);
  assert.equal(await status('/tag-bare', '"x", abc123'), 304);
  assert.equal(await status('/tag-bare', 'abc'), 200);
});

test('client no-cache and max-age=0 are served from cache (documented choice)', async () => {
  origin.route('/client-nc', cacheable('x'));
  await worker.fetch('/client-nc');
  await worker.stored('/client-nc');
  for (const cc of ['no-cache', 'max-age=0']) {
    assert.match((await worker.fetch('/client-nc', { headers: { 'cache-control': cc } })).cacheStatus, /hit/);
  }
  assert.equal(origin.calls('/client-nc').length, 1);
});

test('only-if-cached never reaches the origin', async () => {
  origin.route('/oic', cacheable('x'));
  const res = await worker.fetch('/oic', { headers: { 'cache-control': 'only-if-cached' } });
  assert.equal(res.status, 504);
  assert.equal(origin.calls('/oic').length, 0);
});

test('ranges: a miss is passed through and its 206 not stored; a stored 200 serves ranges', async () => {
  origin.route('/range', (req) =>
    req.headers.range
      ? { status: 206, headers: { 'content-range': 'bytes 0-1/10', 'cache-control': 'max-age=60' }, body: '01' }
      : cacheable('0123456789', { etag: '"r"' }),
  );
  const passed = await worker.fetch('/range', { headers: { range: 'bytes=0-1' } });
  assert.equal(passed.status, 206);
  assert.match(passed.cacheStatus, /fwd-status=206; detail=status$/);
  await worker.fetch('/range');
  await worker.stored('/range');
  const part = await worker.fetch('/range', { headers: { range: 'bytes=2-4' } });
  assert.equal(part.status, 206);
  assert.equal(part.body, '234');
  assert.equal(part.headers.get('content-range'), 'bytes 2-4/10');
  assert.match(part.cacheStatus, /hit/);
  const suffix = await worker.fetch('/range', { headers: { range: 'bytes=-3' } });
  assert.equal(suffix.body, '789');
  const bad = await worker.fetch('/range', { headers: { range: 'bytes=50-' } });
  assert.equal(bad.status, 416);
  const stale = await worker.fetch('/range', { headers: { range: 'bytes=0-1', 'if-range': '"other"' } });
  assert.equal(stale.status, 200);
  assert.equal(stale.body, '0123456789');
  assert.equal(origin.calls('/range').length, 2);
});

// The client's Connection reaches the worker (as `close, …` too): the
// fields it names are removed with it (see production.test.js for why
// that must happen before the key is chosen).
test('hop-by-hop headers are removed in both directions', async () => {
  origin.route('/hop', cacheable('x', { connection: 'x-origin-hop', 'x-origin-hop': '1', 'keep-alive': 'timeout=5' }));
  const res = await worker.raw('/hop', [['Proxy-Authorization', 'Basic x'], ['Keep-Alive', '5'], ['Connection', 'X-Client-Hop, é'], ['X-Client-Hop', '1'], ['X-Kept', '1']]);
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-origin-hop'], undefined);
  assert.equal(res.headers['keep-alive'], undefined);
  const seen = origin.calls('/hop')[0].headers;
  assert.equal(seen['proxy-authorization'], undefined);
  assert.equal(seen['keep-alive'], undefined);
  assert.equal(seen['x-client-hop'], undefined);
  assert.equal(seen['x-kept'], '1');
  const hit = await worker.stored('/hop');
  assert.equal(hit.headers.get('x-origin-hop'), null);
});

// An origin behind Cloudflare's own cache says so in CF-Cache-Status. A hit
// removes the Cache API's field of that name, so the miss drops the origin's
// too: a miss and the hits after it carry the same fields.
test("an origin's CF-Cache-Status is on neither the miss nor its hits", async () => {
  origin.route('/cf-status', cacheable('x', { 'cf-cache-status': 'HIT', 'x-kept': '1' }));
  const miss = await worker.fetch('/cf-status');
  assert.match(miss.cacheStatus, /fwd=uri-miss/);
  assert.equal(miss.headers.get('cf-cache-status'), null);
  assert.equal(miss.headers.get('x-kept'), '1');
  const hit = await worker.stored('/cf-status');
  assert.equal(hit.headers.get('cf-cache-status'), null);
  assert.equal(hit.headers.get('x-kept'), '1');
});

test('Set-Cookie never reaches a stored entry; a private response keeps it', async () => {
  origin.route('/cookie', cacheable('x', { 'set-cookie': 'sid=abc; Path=/' }));
  const miss = await worker.fetch('/cookie');
  assert.equal(miss.headers.get('set-cookie'), null);
  const hit = await worker.stored('/cookie');
  assert.equal(hit.headers.get('set-cookie'), null);
  origin.route('/cookie-private', { headers: { 'cache-control': 'private', 'set-cookie': 'sid=abc' }, body: 'x' });
  assert.equal((await worker.fetch('/cookie-private')).headers.get('set-cookie'), 'sid=abc');
});

test('no-cache responses are stored and revalidated with a conditional request every time', async () => {
  origin.route('/nocache', (req) =>
    req.headers['if-none-match'] === '"n1"'
      ? { status: 304, headers: { etag: '"n1"', 'cache-control': 'no-cache' } }
      : { headers: { etag: '"n1"', 'cache-control': 'no-cache' }, body: 'nc body' },
  );
  await worker.fetch('/nocache');
  await sleep(100);
  const second = await worker.fetch('/nocache');
  assert.equal(second.status, 200);
  assert.equal(second.body, 'nc body');
  assert.equal(second.cacheStatus, 'edge-cache; fwd=stale; fwd-status=304; stored; ttl=0');
  assert.equal(origin.calls('/nocache')[1].headers['if-none-match'], '"n1"');
});

test('a stale entry is revalidated; a 304 refreshes it without a body', async () => {
  origin.route('/stale', (req) =>
    req.headers['if-none-match'] === '"s1"'
      ? { status: 304, headers: { etag: '"s1"', 'cache-control': 'max-age=60', 'x-refreshed': 'yes' } }
      : { headers: { etag: '"s1"', 'cache-control': 'max-age=1' }, body: 'stale body' },
  );
  await worker.fetch('/stale');
  await worker.stored('/stale');
  await sleep(2100);
  const revalidated = await worker.fetch('/stale');
  assert.equal(revalidated.body, 'stale body');
  assert.equal(revalidated.headers.get('x-refreshed'), 'yes');
  assert.match(revalidated.cacheStatus, /^edge-cache; fwd=stale; fwd-status=304; stored; ttl=60$/);
  await sleep(100);
  assert.match((await worker.fetch('/stale')).cacheStatus, /hit; ttl=(59|60)/);
  assert.equal(origin.calls('/stale').length, 2);
});

test('every response carries Cache-Status, including errors', async () => {
  const admin = await worker.fetch('/_admin/nothing', { method: 'POST' });
  assert.equal(admin.status, 404);
  assert.equal(admin.cacheStatus, 'edge-cache; detail=admin');
  const missing = await worker.fetch('/no-such-route');
  assert.equal(missing.status, 404);
  assert.match(missing.cacheStatus, /^edge-cache; fwd=uri-miss; fwd-status=404/);
});

test('heuristic freshness is off by default and configurable with HEURISTIC_FRESHNESS', async () => {
  const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000).toUTCString();
  const hourAgo = new Date(Date.now() - 3_600_000).toUTCString();
  origin.route('/heuristic', { headers: { 'last-modified': tenDaysAgo }, body: 'h' });
  origin.route('/heuristic-hour', { headers: { 'last-modified': hourAgo }, body: 'h' });
  assert.match((await worker.fetch('/heuristic')).cacheStatus, /detail=no-freshness$/);
  const heuristic = await startWorker({ ORIGIN: origin.url, HEURISTIC_FRESHNESS: '10' });
  try {
    // 10% of ten days, capped at one day; 10% of an hour is six minutes.
    assert.match((await heuristic.fetch('/heuristic')).cacheStatus, /stored; ttl=86400$/);
    assert.match((await heuristic.fetch('/heuristic-hour')).cacheStatus, /stored; ttl=(359|360)$/);
    await heuristic.stored('/heuristic');
    assert.equal(origin.calls('/heuristic').length, 2);
  } finally {
    await heuristic.dispose();
  }
});

test('stored fields with characters beyond ASCII reach hits as they reached the miss', async () => {
  // Sent as UTF-8 bytes. The record that keeps Vary and Cache-Control used
  // to drop such values, so hits lost both.
  origin.route('/utf8-fields', { raw: 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60, ext="é😀"\r\nVary: x-a, x-é\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody' });
  const miss = await worker.fetch('/utf8-fields');
  assert.match(miss.cacheStatus, /stored/);
  await worker.stored('/utf8-fields');
  const hit = await worker.fetch('/utf8-fields');
  assert.match(hit.cacheStatus, /hit/);
  for (const name of ['cache-control', 'vary']) assert.equal(hit.headers.get(name), miss.headers.get(name), name);
  // Node's fetch reads header bytes as Latin-1.
  assert.equal(Buffer.from(hit.headers.get('vary'), 'latin1').toString('utf8'), 'x-a, x-é');
});
