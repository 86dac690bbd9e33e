// Stale-while-revalidate, stale-if-error, one origin fetch per key, negative
// caching (issue 8), in workerd against a counting origin that can be slow.
// An `age` equal to `max-age` makes an entry stale the moment it is stored,
// so no test sleeps through a freshness lifetime.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin, startWorker, sleep } from './harness.js';

let origin;
let worker;
before(async () => {
  origin = await startOrigin();
  worker = await startWorker({ ORIGIN: origin.url, ORIGIN_TIMEOUT: '2', BYPASS_COOKIES: 'session' });
});
after(async () => {
  await worker?.dispose();
  await origin?.close();
});

/** Answers after `ms` milliseconds. */
const slowly = (ms, answer) => async (req, n) => {
  await sleep(ms);
  return typeof answer === 'function' ? answer(req, n) : answer;
};
const timed = async (promise) => {
  const started = Date.now();
  const res = await promise;
  return { ...res, ms: Date.now() - started };
};
/** Waits for background work (revalidations, writes) to land. */
const settle = () => sleep(300);

test('stale-while-revalidate answers at once while the origin is slow, then serves the refreshed entry', async () => {
  origin.route('/swr', slowly(1500, (req, n) => (n === 1
    ? { headers: { 'cache-control': 'max-age=60, stale-while-revalidate=600', age: '60', etag: '"v1"' }, body: 'first' }
    : { status: 304, headers: { 'cache-control': 'max-age=60, stale-while-revalidate=600', etag: '"v1"' } })));
  await worker.fetch('/swr');
  await settle();
  const stale = await timed(worker.fetch('/swr'));
  assert.ok(stale.ms < 700, `answered in ${stale.ms} ms`);
  assert.equal(stale.body, 'first');
  assert.match(stale.cacheStatus, /^edge-cache; hit; ttl=-?\d+; detail=stale-while-revalidate$/);
  await sleep(2000); // the background revalidation waits for the slow origin
  const calls = origin.calls('/swr');
  assert.equal(calls.length, 2);
  assert.equal(calls[1].headers['if-none-match'], '"v1"');
  const fresh = await worker.fetch('/swr');
  assert.equal(fresh.body, 'first', 'a 304 keeps the stored body');
  // Fresh again; its age counts from the request that revalidated it, so
  // the origin's 1.5 s delay counts as age (RFC 9111 §4.2.3 response_delay).
  assert.match(fresh.cacheStatus, /^edge-cache; hit; ttl=5[6-9]$/);
  assert.equal(origin.calls('/swr').length, 2);
});

test('a background 200 replaces the entry; an error leaves the stale one in place', async () => {
  origin.route('/swr-replace', (req, n) => {
    const headers = { 'cache-control': 'max-age=60, stale-while-revalidate=600', age: '60', etag: `"v${n}"` };
    if (n === 2) return { status: 503, body: 'down' };
    return { headers, body: `version ${n}` };
  });
  await worker.fetch('/swr-replace');
  await settle();
  assert.equal((await worker.fetch('/swr-replace')).body, 'version 1'); // background 503
  await settle();
  assert.equal((await worker.fetch('/swr-replace')).body, 'version 1'); // background 200
  await settle();
  const replaced = await worker.fetch('/swr-replace');
  assert.equal(replaced.body, 'version 3');
});

test('stale-if-error masks 503, a reset and a timeout inside its window, and not after it', async () => {
  const stored = { 'cache-control': 'max-age=60, stale-if-error=600', age: '60', etag: '"s"' };
  for (const [path, failure] of [['/sie-503', { status: 503, body: 'down' }], ['/sie-reset', 'reset'], ['/sie-hang', 'hang']]) {
    origin.route(path, (req, n) => (n === 1 ? { headers: stored, body: 'good copy' } : failure));
    await worker.fetch(path);
    await settle();
    const masked = await worker.fetch(path);
    assert.equal(masked.status, 200, path);
    assert.equal(masked.body, 'good copy', path);
    assert.match(masked.cacheStatus, /^edge-cache; fwd=stale; (fwd-status=503; )?ttl=-?\d+; detail=stale-if-error$/, path);
  }
  // Past the window (stale by 940 s of 600) the failure goes through.
  origin.route('/sie-late', (req, n) => (n === 1
    ? { headers: { 'cache-control': 'max-age=60, stale-if-error=600', age: '1000', etag: '"s"' }, body: 'old copy' }
    : { status: 503, body: 'down' }));
  await worker.fetch('/sie-late');
  await settle();
  const late = await worker.fetch('/sie-late');
  assert.equal(late.status, 503);
  assert.equal(late.body, 'down');
});

test('s-maxage and must-revalidate entries are not served stale, whatever the defaults', async () => {
  const lenient = await startWorker({ ORIGIN: origin.url, STALE_IF_ERROR: '600', STALE_WHILE_REVALIDATE: '600' });
  try {
    for (const cc of ['s-maxage=60', 'max-age=60, must-revalidate', 'max-age=60, proxy-revalidate']) {
      const path = `/strict-${cc.replace(/\W+/g, '-')}`;
      origin.route(path, (req, n) => (n === 1 ? { headers: { 'cache-control': cc, age: '60', etag: '"x"' }, body: 'old' } : { status: 503, body: 'down' }));
      await lenient.fetch(path);
      await settle();
      const res = await lenient.fetch(path);
      assert.equal(res.status, 503, cc);
    }
    // The same defaults do apply to a response that forbids nothing.
    origin.route('/lenient', (req, n) => (n === 1 ? { headers: { 'cache-control': 'max-age=60', age: '60', etag: '"x"' }, body: 'old' } : { status: 503, body: 'down' }));
    await lenient.fetch('/lenient');
    await settle();
    const served = await lenient.fetch('/lenient');
    assert.equal(served.body, 'old');
    assert.match(served.cacheStatus, /detail=stale-while-revalidate/);
  } finally {
    await lenient.dispose();
  }
});

/** Sends `n` requests at once. */
const burst = (n, path, init) => Promise.all(Array.from({ length: n }, () => worker.fetch(path, init)));

test('a stampede of 50 on a cold key with a slow origin makes one origin call; all get the same body', async () => {
  let version = 0;
  origin.route('/cold', slowly(500, () => ({ headers: { 'cache-control': 'max-age=60' }, body: `body ${++version}` })));
  const answers = await burst(50, '/cold');
  assert.equal(origin.calls('/cold').length, 1);
  assert.deepEqual(new Set(answers.map((r) => r.body)), new Set(['body 1']));
  assert.equal(answers.filter((r) => /collapsed/.test(r.cacheStatus)).length, 49);
});

test('a stampede of 50 on an expired key makes one conditional origin call', async () => {
  origin.route('/expired', slowly(500, (req, n) => (n === 1
    ? { headers: { 'cache-control': 'max-age=60', age: '60', etag: '"e"' }, body: 'kept' }
    : { status: 304, headers: { 'cache-control': 'max-age=60', etag: '"e"' } })));
  await worker.fetch('/expired');
  await settle();
  const answers = await burst(50, '/expired');
  assert.equal(origin.calls('/expired').length, 2);
  assert.ok(answers.every((r) => r.status === 200 && r.body === 'kept'));
});

test('a private answer is not handed to waiters: each asks the origin, at once', async () => {
  let n = 0;
  origin.route('/mine', slowly(500, () => ({ headers: { 'cache-control': 'private, max-age=60' }, body: `for ${++n}` })));
  const started = Date.now();
  const answers = await burst(10, '/mine');
  const elapsed = Date.now() - started;
  assert.equal(origin.calls('/mine').length, 10);
  assert.equal(new Set(answers.map((r) => r.body)).size, 10);
  // Leader, then everyone else together: two origin delays, not ten.
  assert.ok(elapsed < 2500, `took ${elapsed} ms`);
});

test('a waiter of another variant is not given the leader\'s', async () => {
  origin.route('/lang', slowly(300, (req) => ({ headers: { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, body: `in ${req.headers['accept-language']}` })));
  const [de, fr] = await Promise.all([
    worker.fetch('/lang', { headers: { 'accept-language': 'de' } }),
    worker.fetch('/lang', { headers: { 'accept-language': 'fr' } }),
  ]);
  assert.equal(de.body, 'in de');
  assert.equal(fr.body, 'in fr');
});

test('a dead origin sees one request from a burst, and every waiter gets the error', async () => {
  origin.route('/down', slowly(300, 'reset'));
  const answers = await burst(20, '/down');
  assert.equal(origin.calls('/down').length, 1);
  assert.ok(answers.every((r) => r.status === 502));
});

test('requests with Authorization never share a fetch', async () => {
  origin.route('/authed', slowly(300, { headers: { 'cache-control': 'public, max-age=60' }, body: 'x' }));
  await Promise.all(Array.from({ length: 5 }, () => worker.fetch('/authed', { headers: { authorization: 'Bearer t' } })));
  assert.equal(origin.calls('/authed').length, 5);
});

test('requests with a bypass cookie never share a fetch', async () => {
  origin.route('/session', slowly(300, { headers: { 'cache-control': 'max-age=60' }, body: 'x' }));
  await Promise.all(Array.from({ length: 5 }, (_, i) => worker.fetch('/session', { headers: { cookie: `session=${i}` } })));
  assert.equal(origin.calls('/session').length, 5);
});

test('a burst on a stale entry is answered at once and revalidated once', async () => {
  origin.route('/swr-burst', slowly(500, (req, n) => (n === 1
    ? { headers: { 'cache-control': 'max-age=60, stale-while-revalidate=600', age: '60', etag: '"w"' }, body: 'stale body' }
    : { status: 304, headers: { 'cache-control': 'max-age=60, stale-while-revalidate=600', etag: '"w"' } })));
  await worker.fetch('/swr-burst');
  await settle();
  const answers = await timed(burst(30, '/swr-burst'));
  assert.ok(answers.ms < 400, `took ${answers.ms} ms`);
  await sleep(1000);
  assert.equal(origin.calls('/swr-burst').length, 2, 'one fill, one background revalidation');
});

test('404 and 410 without freshness are kept NEGATIVE_TTL seconds; explicit freshness wins; 0 turns it off', async () => {
  origin.route('/gone', { status: 404, body: 'no such page' });
  const first = await worker.fetch('/gone');
  // The Date the worker gives it may be a second behind by now.
  assert.match(first.cacheStatus, /fwd-status=404; stored; ttl=(29|30)$/);
  assert.equal((await worker.stored('/gone')).status, 404);
  assert.equal(origin.calls('/gone').length, 1);
  origin.route('/gone-short', { status: 410, headers: { 'cache-control': 'max-age=5' }, body: 'gone' });
  assert.match((await worker.fetch('/gone-short')).cacheStatus, /ttl=5$/);
  origin.route('/server-error', { status: 500, body: 'oops' });
  assert.match((await worker.fetch('/server-error')).cacheStatus, /detail=no-freshness$/);
  const off = await startWorker({ ORIGIN: origin.url, NEGATIVE_TTL: '0' });
  try {
    origin.route('/gone-off', { status: 404, body: 'nope' });
    assert.match((await off.fetch('/gone-off')).cacheStatus, /detail=no-freshness$/);
  } finally {
    await off.dispose();
  }
});

test('a body that streams for longer than ORIGIN_TIMEOUT arrives whole: the timeout is for the headers', async () => {
  origin.route('/trickle', { stream: { headers: { 'cache-control': 'max-age=60' }, chunks: ['a', 'b', 'c', 'd'], gapMs: 1000 } });
  const res = await timed(worker.fetch('/trickle'));
  assert.equal(res.status, 200);
  assert.equal(res.body, 'abcd');
  assert.ok(res.ms > 2500, `took ${res.ms} ms`);
  // Still arriving at ORIGIN_TIMEOUT: passed on as it came, not stored.
  assert.match(res.cacheStatus, /detail=too-slow$/);
});

// Found by probing stale serving and coalescing as an attacker would.

test('review: a leader whose body never ends holds its key for ORIGIN_TIMEOUT at most', async () => {
  origin.route('/wedge', (req, n) => (n === 1
    ? { stream: { headers: { 'cache-control': 'max-age=60' }, chunks: ['never ', 'ends'], gapMs: 20_000 } }
    : { headers: { 'cache-control': 'max-age=60' }, body: 'second' }));
  const leader = worker.fetch('/wedge').catch(() => null);
  await sleep(2200); // past ORIGIN_TIMEOUT (2 s)
  const next = await timed(worker.fetch('/wedge'));
  assert.equal(next.body, 'second');
  assert.ok(next.ms < 1000, `took ${next.ms} ms`);
  void leader;
});

test('review: one client\'s 5xx is never served to others; waiters with a stale entry use it, without retries', async () => {
  // The origin chokes on a cookie only the first client sends.
  origin.route('/choke', slowly(500, (req) => (/cart=%%/.test(req.headers.cookie ?? '')
    ? { status: 500, body: 'oops' }
    : { headers: { 'cache-control': 'max-age=60' }, body: 'fine' })));
  const attacker = worker.fetch('/choke', { headers: { cookie: 'cart=%%' } });
  await sleep(50);
  const victims = await burst(10, '/choke');
  assert.equal((await attacker).status, 500);
  assert.ok(victims.every((r) => r.status === 200 && r.body === 'fine'));
  // A burst on a stale entry whose origin is overloaded: one call, stale for all.
  origin.route('/overloaded', slowly(500, (req, n) => (n === 1
    ? { headers: { 'cache-control': 'max-age=60, stale-if-error=600', age: '60', etag: '"o"' }, body: 'old copy' }
    : { status: 503, body: 'busy' })));
  await worker.fetch('/overloaded');
  await settle();
  const answers = await burst(20, '/overloaded');
  assert.equal(origin.calls('/overloaded').length, 2);
  assert.ok(answers.every((r) => r.body === 'old copy'));
});

test('review: a request no-store, a cookie or an error page with no-store cannot retire a shared entry', async () => {
  origin.route('/keep', (req, n) => {
    if (n === 1) return { headers: { 'cache-control': 'max-age=60, stale-while-revalidate=600', age: '60', etag: '"k"' }, body: 'shared copy' };
    if (req.headers.cookie) return { headers: { 'cache-control': 'private' }, body: 'yours' };
    // Spring Security's answer to an Accept it cannot serve.
    if (req.headers.accept === 'application/x-nope') return { status: 406, headers: { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate' } };
    return { status: 304, headers: { 'cache-control': 'max-age=60, stale-while-revalidate=600', age: '60', etag: '"k"' } };
  });
  await worker.fetch('/keep');
  await settle();
  await worker.fetch('/keep', { headers: { 'cache-control': 'no-store' } });
  await settle();
  await worker.fetch('/keep', { headers: { cookie: 'cart=1' } });
  await settle();
  await worker.fetch('/keep', { headers: { accept: 'application/x-nope' } });
  await settle();
  const next = await worker.fetch('/keep');
  assert.equal(next.body, 'shared copy');
  assert.doesNotMatch(next.cacheStatus, /uri-miss/);
});

test('review: one no-store or Range request cannot lead a flight and spoil it for the others', async () => {
  origin.route('/spoil', slowly(500, { headers: { 'cache-control': 'max-age=60' }, body: 'shared' }));
  const spoilers = [worker.fetch('/spoil', { headers: { 'cache-control': 'no-store' } }), worker.fetch('/spoil', { headers: { range: 'bytes=0-1' } })];
  await sleep(20);
  const answers = await burst(20, '/spoil');
  await Promise.all(spoilers);
  assert.equal(origin.calls('/spoil').length, 3);
  assert.ok(answers.every((r) => r.body === 'shared'));
});

test('review: a 304 without Date freshens the entry', async () => {
  // Stale on arrival by its old Date; the 304 brings no Date of its own.
  origin.route('/dateless', (req, n) => (n === 1
    ? { headers: { 'cache-control': 'max-age=60', date: new Date(Date.now() - 61_000).toUTCString(), etag: '"d"' }, body: 'kept' }
    : { raw: 'HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=60\r\nETag: "d"\r\n\r\n' }));
  await worker.fetch('/dateless');
  await settle();
  await worker.fetch('/dateless');
  await settle();
  const hit = await worker.fetch('/dateless');
  assert.match(hit.cacheStatus, /^edge-cache; hit; ttl=(59|60)$/);
  assert.equal(hit.body, 'kept');
  assert.equal(origin.calls('/dateless').length, 2);
});

test('review: once the origin says no-store, the stale copy stops answering', async () => {
  origin.route('/went-private', (req, n) => (n === 1
    ? { headers: { 'cache-control': 'max-age=60, stale-while-revalidate=600', age: '60', etag: '"p"' }, body: 'old shared copy' }
    : { headers: { 'cache-control': 'no-store' }, body: `personal ${n}` }));
  await worker.fetch('/went-private');
  await settle();
  assert.equal((await worker.fetch('/went-private')).body, 'old shared copy');
  await settle();
  const next = await worker.fetch('/went-private');
  assert.match(next.body, /^personal/);
});

test('review: a burst over five languages makes one origin call per language, and none after', async () => {
  origin.route('/langs', slowly(300, (req) => ({ headers: { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, body: `in ${req.headers['accept-language']}` })));
  const langs = ['de', 'fr', 'it', 'es', 'nl'];
  const round = () => Promise.all(langs.flatMap((lang) => Array.from({ length: 10 }, () => worker.fetch('/langs', { headers: { 'accept-language': lang } }))));
  const first = await round();
  assert.equal(origin.calls('/langs').length, 5);
  first.forEach((r, i) => assert.equal(r.body, `in ${langs[Math.floor(i / 10)]}`));
  await settle();
  await round();
  assert.equal(origin.calls('/langs').length, 5);
});

test('review: stale-if-error covers a body that breaks off', async () => {
  origin.route('/breaks', (req, n) => (n === 1
    ? { headers: { 'cache-control': 'max-age=60, stale-if-error=600', age: '60', etag: '"b"' }, body: 'good copy' }
    : { raw: `HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5000\r\n\r\n${'x'.repeat(100)}` }));
  await worker.fetch('/breaks');
  await settle();
  const res = await worker.fetch('/breaks');
  assert.equal(res.body, 'good copy');
  assert.match(res.cacheStatus, /detail=stale-if-error$/);
});

test('review: preconditions are answered only from what the cache holds', async () => {
  // RFC 9111 §4.3.2: nothing is stored for a private answer, and the
  // origin never saw the client's If-None-Match (a fill asks without it).
  origin.route('/login', (req, n) => ({ headers: { 'cache-control': 'private, no-store', 'set-cookie': `session=s${n}; HttpOnly`, etag: '"p"' }, body: 'welcome' }));
  for (const inm of ['*', '"p"']) {
    const login = await worker.fetch('/login', { headers: { 'if-none-match': inm } });
    assert.equal(login.status, 200, inm);
    assert.equal(login.body, 'welcome');
    assert.match(login.headers.get('set-cookie'), /^session=s\d; HttpOnly$/);
  }
  // A bypassed request takes its preconditions to the origin, whose 200 stands.
  origin.route('/account', { headers: { 'cache-control': 'private', 'set-cookie': 'session=rotated' }, body: 'account' });
  const account = await worker.fetch('/account', { headers: { cookie: 'session=old', 'if-none-match': '*' } });
  assert.equal(account.status, 200);
  assert.equal(account.headers.get('set-cookie'), 'session=rotated');
  assert.equal(origin.calls('/account')[0].headers['if-none-match'], '*');
});

test('review: a client\'s If-None-Match: * on a range request cannot keep a stale copy alive', async () => {
  // The origin's 304 for `*` says nothing about the stored copy (RFC 9110
  // §13.1.2); a revalidation asks with the cache's validators only.
  let version = 1;
  origin.route('/pin', (req, n) => {
    const modified = new Date(Date.UTC(2020, 0, version)).toUTCString();
    // Stale on arrival the first time only.
    const headers = { 'cache-control': 'max-age=60', ...(n === 1 ? { age: '60' } : {}) };
    if (req.headers['if-none-match'] === '*' || req.headers['if-modified-since'] === modified) return { status: 304, headers };
    return { headers: { ...headers, 'last-modified': modified }, body: `VERSION-${version}` };
  });
  await worker.fetch('/pin');
  await settle();
  version = 2;
  const attacker = await worker.fetch('/pin', { headers: { range: 'bytes=0-0', 'if-none-match': '*' } });
  assert.equal(attacker.status, 304);
  const revalidation = origin.calls('/pin')[1].headers;
  assert.equal(revalidation['if-none-match'], undefined);
  assert.equal(revalidation.range, undefined);
  await settle();
  const plain = await worker.fetch('/pin');
  assert.equal(plain.body, 'VERSION-2');
  assert.match(plain.cacheStatus, /; hit/);
});

test('review: If-Match and If-Unmodified-Since that rule out the stored bytes get a 412, fresh or stale', async () => {
  // A client resuming a download of another representation must get no
  // bytes of this one (RFC 9110 §13.2.2), as the origin would answer.
  origin.route('/resume', (req, n) => {
    const headers = { 'cache-control': 'max-age=60', etag: '"v1"', 'last-modified': 'Wed, 01 Jan 2020 00:00:00 GMT', ...(n === 1 ? { age: '60' } : {}) };
    if (req.headers['if-none-match'] === '"v1"') return { status: 304, headers };
    return { headers, body: '0123456789' };
  });
  await worker.fetch('/resume');
  await settle();
  for (const phase of ['stale', 'fresh']) {
    for (const precondition of [{ 'if-match': '"v0"' }, { 'if-unmodified-since': 'Tue, 31 Dec 2019 00:00:00 GMT' }]) {
      const resumed = await worker.fetch('/resume', { headers: { range: 'bytes=0-3', ...precondition } });
      assert.equal(resumed.status, 412, `${phase} ${JSON.stringify(precondition)}`);
      assert.equal(resumed.body, '');
      await settle();
    }
  }
  const same = await worker.fetch('/resume', { headers: { range: 'bytes=0-3', 'if-match': '"v1"' } });
  assert.equal(same.status, 206);
  assert.equal(same.body, '0123');
  assert.equal((await worker.fetch('/resume')).body, '0123456789');
});
