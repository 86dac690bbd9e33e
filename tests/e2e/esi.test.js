// Fragment composition (issue 10): pages composed at the edge from cached
// fragments, each fetched through the cache pipeline on its own, against a
// counting origin whose fragments can be slow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startOrigin, startWorker, sleep, IPHONE } from './harness.js';

const TOKEN = 'esi-admin-token-0123456789';
const ESI = { 'surrogate-control': 'content="ESI/1.0"' };

let origin;
let worker;
before(async () => {
  origin = await startOrigin();
  worker = await startWorker({ ORIGIN: origin.url, ADMIN_TOKEN: TOKEN, COUNTRY_HEADER: 'x-test-country', ORIGIN_TIMEOUT: '5' });
});
after(async () => {
  await worker?.dispose();
  await origin?.close();
});

const page = (path, body, headers = {}) => origin.route(path, { headers: { ...ESI, 'cache-control': 'max-age=600', etag: '"tpl"', ...headers }, body });
const fragment = (path, body, headers = {}, ms = 0) =>
  origin.route(path, async (req, n) => {
    if (ms) await sleep(ms);
    return { headers: { 'cache-control': 'max-age=60', ...headers }, body: typeof body === 'function' ? body(req, n) : body };
  });

test('a page composed from fragments with different lifetimes and tags; honest headers; no fragment cookie', async () => {
  page('/c/page', '<header><esi:include src="/c/head"/></header><main><esi:include src="prices"/></main><esi:include src="/c/head"/>');
  fragment('/c/head', (req, n) => `HEAD#${n}`, { 'cache-control': 'max-age=600', 'cache-tag': 'head', 'set-cookie': 'frag=1' });
  fragment('/c/prices', (req, n) => `PRICES#${n}`, { 'cache-control': 'max-age=30', 'cache-tag': 'prices' });
  const first = await worker.fetch('/c/page');
  assert.equal(first.status, 200);
  assert.equal(first.body, '<header>HEAD#1</header><main>PRICES#1</main>HEAD#1');
  assert.equal(first.headers.get('cache-control'), 'private, max-age=30', 'made for this client: never shared downstream');
  for (const gone of ['etag', 'set-cookie', 'surrogate-control', 'cache-tag', 'content-length']) assert.equal(first.headers.get(gone), null, gone);
  assert.match(first.cacheStatus, /esi-fragments=2; esi-hits=0$/);
  await worker.stored('/c/head');
  await worker.stored('/c/prices');
  const again = await worker.fetch('/c/page');
  assert.equal(again.body, first.body);
  assert.match(again.cacheStatus, /^edge-cache; hit; .*esi-fragments=2; esi-hits=2$/);
  assert.deepEqual(['/c/page', '/c/head', '/c/prices'].map((p) => origin.calls(p).length), [1, 1, 1]);

  // Purging one fragment refetches it, not the template nor the other fragment.
  const purge = await worker.fetch('/_admin/purge', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{"tags": ["prices"]}' });
  assert.equal(purge.status, 200);
  const after = await worker.fetch('/c/page');
  assert.equal(after.body, '<header>HEAD#1</header><main>PRICES#2</main>HEAD#1');
  assert.deepEqual(['/c/page', '/c/head', '/c/prices'].map((p) => origin.calls(p).length), [1, 1, 2]);
});

test('remove, comment, <!--esi, onerror, alt, try/except and variables', async () => {
  page('/m/page', [
    'a<esi:remove>REMOVED</esi:remove>b<esi:comment text="x"/>c<!--esi <esi:include src="/m/ok"/> -->d',
    '<esi:include src="/m/missing" onerror="continue"/>e<esi:include src="/m/missing" alt="/m/ok"/>f',
    '<esi:try><esi:attempt><esi:include src="/m/missing"/></esi:attempt><esi:except>EXCEPT</esi:except></esi:try>g',
    '<esi:vars>[$(HTTP_HOST)|$(QUERY_STRING{q})|$(HTTP_COOKIE{theme})|$(DEVICE_CLASS)|$(GEO{country_code})]</esi:vars>',
    '<esi:include src="/m/echo?q=$(QUERY_STRING{q})"/>',
  ].join(''));
  fragment('/m/ok', 'OK');
  fragment('/m/echo', (req) => `echo:${req.url}`);
  const res = await worker.fetch('/m/page?q=%3Cb%3E', { headers: { cookie: 'theme=dark', 'user-agent': IPHONE, 'x-test-country': 'DE' } });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'abc OK de' + 'OKf' + 'EXCEPTg' + '[shop.test|&lt;b&gt;|dark|mobile|DE]' + 'echo:/m/echo?q=%3Cb%3E');
  assert.doesNotMatch(res.body, /esi/i);
});

test('per-device fragments: each client gets its own variant, the template is shared', async () => {
  page('/d/page', '<esi:include src="/d/nav"/>');
  fragment('/d/nav', (req) => `nav-${req.headers['cf-device-type']}`, { vary: 'cf-device-type' });
  assert.equal((await worker.fetch('/d/page', { headers: { 'user-agent': IPHONE } })).body, 'nav-mobile');
  assert.equal((await worker.fetch('/d/page')).body, 'nav-desktop');
  await worker.stored('/d/nav', { 'user-agent': IPHONE });
  assert.equal((await worker.fetch('/d/page', { headers: { 'user-agent': IPHONE } })).body, 'nav-mobile');
  assert.equal(origin.calls('/d/page').length, 1);
  assert.equal(origin.calls('/d/nav').length, 2);
});

test('nested includes, loops, an include bomb and other hosts are bounded; the worker stays healthy', async () => {
  for (const n of [1, 2, 3]) page(`/n/${n}`, `${n}(<esi:include src="/n/${n + 1}"/>)`);
  fragment('/n/4', 'leaf');
  assert.equal((await worker.fetch('/n/1')).body, '1(2(3(leaf)))');
  page('/n/deep1', '<esi:include src="/n/deep2"/>');
  page('/n/deep2', '<esi:include src="/n/deep3"/>');
  page('/n/deep3', '<esi:include src="/n/deep4"/>');
  page('/n/deep4', '<esi:include src="/n/4"/>');
  const deep = await worker.fetch('/n/deep1');
  assert.equal(deep.status, 502, 'a fourth level of templates');
  page('/n/loop', 'x<esi:include src="/n/loop"/>');
  assert.equal((await worker.fetch('/n/loop')).status, 502);
  assert.equal(origin.calls('/n/loop').length, 1);
  page('/n/bomb', '<esi:include src="/n/4"/>'.repeat(5000));
  const started = Date.now();
  const bomb = await worker.fetch('/n/bomb');
  assert.equal(bomb.status, 502);
  assert.ok(Date.now() - started < 3000);
  page('/n/soft-bomb', '<esi:include src="/n/4" onerror="continue"/>'.repeat(5000));
  const soft = await worker.fetch('/n/soft-bomb');
  assert.equal(soft.status, 200);
  assert.equal(soft.body.length, 256 * 'leaf'.length, 'bounded: the rest disappear');
  assert.equal(origin.calls('/n/4').length, 1, 'one fetch for every copy');
  page('/n/offsite', 'a<esi:include src="http://127.0.0.1:1/secret" onerror="continue"/>b<esi:include src="https://elsewhere.test/x" alt="/n/4"/>c');
  assert.equal((await worker.fetch('/n/offsite')).body, 'ableafc');
  assert.equal((await worker.fetch('/n/1')).body, '1(2(3(leaf)))', 'healthy after');
});

test('five slow fragments are fetched in parallel; the first bytes arrive before a slow last fragment', async () => {
  page('/p/five', ['/p/1', '/p/2', '/p/3', '/p/4', '/p/5'].map((p) => `<esi:include src="${p}"/>`).join('|'));
  for (const n of [1, 2, 3, 4, 5]) fragment(`/p/${n}`, `F${n}`, {}, 500);
  let started = Date.now();
  const five = await worker.fetch('/p/five');
  const took = Date.now() - started;
  assert.equal(five.body, 'F1|F2|F3|F4|F5');
  assert.ok(took < 1600, `five 500 ms fragments took ${took} ms (one after another: 2,500)`);
  assert.equal(five.headers.get('cache-control'), 'private, no-store', 'fragments not known when the head left');

  page('/p/stream', `<html>${'x'.repeat(2000)}<esi:include src="/p/slow"/></html>`);
  fragment('/p/slow', 'SLOW', {}, 1500);
  started = Date.now();
  // identity: Miniflare's front end would gzip, and gzip buffers.
  const res = await fetch(new URL('/p/stream', worker.url), { headers: { host: 'shop.test', 'accept-encoding': 'identity' } });
  const reader = res.body.getReader();
  const first = await reader.read();
  const firstAt = Date.now() - started;
  let text = new TextDecoder().decode(first.value);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const allAt = Date.now() - started;
  assert.ok(firstAt < 1000, `first bytes after ${firstAt} ms (the slow fragment takes 1,500)`);
  assert.ok(allAt >= 1400, `whole page after ${allAt} ms`);
  assert.ok(text.startsWith('<html>xx') && text.endsWith('SLOW</html>'));
});

test('the client cannot have the template: If-None-Match, If-Modified-Since and Range get the composed page', async () => {
  page('/v/page', 'page:<esi:include src="/v/f"/>', { 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' });
  fragment('/v/f', 'F');
  await worker.fetch('/v/page');
  for (const headers of [{ 'if-none-match': '"tpl"' }, { 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' }, { range: 'bytes=0-3' }]) {
    const res = await worker.fetch('/v/page', { headers });
    assert.equal(res.status, 200, JSON.stringify(headers));
    assert.equal(res.body, 'page:F');
    assert.equal(res.headers.get('last-modified'), null);
  }
});

test('an error page marked for ESI is composed; a range of a template never reaches the client', async () => {
  origin.route('/e/missing', { status: 404, headers: { ...ESI }, body: 'gone<esi:remove>SECRET</esi:remove>:<esi:include src="/e/f"/>' });
  fragment('/e/f', 'F');
  const missing = await worker.fetch('/e/missing');
  assert.equal(missing.status, 404);
  assert.equal(missing.body, 'gone:F');
  origin.route('/e/ranged', (req) => (req.headers.range
    ? { status: 206, headers: { ...ESI, 'cache-control': 'max-age=600', 'content-range': 'bytes 0-9/40' }, body: '<esi:remov' }
    : { headers: { ...ESI, 'cache-control': 'max-age=600' }, body: '<esi:remove>SECRET</esi:remove>ok' }));
  const ranged = await worker.fetch('/e/ranged', { headers: { range: 'bytes=0-9' } });
  assert.equal(ranged.status, 502);
  assert.doesNotMatch(ranged.body, /esi|SECRET/);
  assert.match(ranged.cacheStatus, /detail=esi-error/);
  assert.equal((await worker.fetch('/e/ranged')).body, 'ok');
  const again = await worker.fetch('/e/ranged', { headers: { range: 'bytes=0-9' } });
  assert.equal(again.status, 200);
  assert.equal(again.body, 'ok');
});

test('pages whose clients left stop holding the isolate\'s composition budget', async () => {
  // ORIGIN_TIMEOUT=2: a composition counts for at most 8 s. Each page holds
  // twice its ~1,000 KiB template: 20 of them pass the isolate's 32 MiB.
  // Their clients leave after the head; the rest of each page is never
  // read (under Miniflare the write waits for good), so only the bound
  // gives the budget back. Where the runtime reports the client leaving
  // (request.signal), the pages are dropped at once.
  const quick = await startWorker({ ORIGIN: origin.url, ORIGIN_TIMEOUT: '2' });
  try {
    const big = 'x'.repeat(1000 * 1024);
    for (let i = 0; i < 20; i++) page(`/gone/${i}`, `${big}<esi:include src="/gone/slow"/>`);
    fragment('/gone/slow', 'S', {}, 500);
    const { hostname, port } = new URL(quick.url);
    await Promise.all(Array.from({ length: 20 }, (_, i) => new Promise((resolve) => {
      const req = http.get({ hostname, port, path: `/gone/${i}`, headers: { host: 'shop.test' } });
      req.on('error', () => resolve());
      setTimeout(() => { req.destroy(); resolve(); }, 300);
    })));
    page('/gone/after', `${big}<esi:include src="/gone/after-f"/>`);
    fragment('/gone/after-f', 'F');
    // Where the abandoned pages are still held (the write waits), they keep
    // others out until the bound: then, and only then, the page composes.
    await sleep(1500);
    const busy = await quick.fetch('/gone/after');
    if (busy.status !== 200) assert.match(busy.cacheStatus, /detail=esi-busy/);
    await sleep(7000);
    const after = await quick.fetch('/gone/after');
    assert.equal(after.status, 200, after.cacheStatus);
    assert.equal(after.body, `${big}F`);
  } finally {
    await quick.dispose();
  }
});
