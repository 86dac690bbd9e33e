// Cache keys by URL, device and country; cookie hygiene; poisoning defences.
// The origin echoes what it received, so each test sees what the origin saw
// and how many times it was asked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startOrigin, startWorker, DESKTOP } from './harness.js';

const IPHONE_15 = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1';
const IPHONE_12 = 'Mozilla/5.0 (iPhone; CPU iPhone OS 14_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.0.3 Mobile/15E148 Safari/604.1';
const IPAD = 'Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1';
// Android agents, decided by the learned device model rather than a rule.
const GALAXY_S23 = 'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.0.0 Mobile Safari/537.36';
const PIXEL_7 = 'Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.0.0 Mobile Safari/537.36';
const TABLET_SAYING_MOBILE = 'Mozilla/5.0 (Linux; Android 7.0; Tesla L7.1 Build/NRD90M) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/68.0.3440.91 Mobile Safari/537.36';
const FIRE_TV = 'Mozilla/5.0 (Linux; Android 9; AFTLBT962E2) AppleWebKit/537.36 (KHTML, like Gecko) Silk/118.3.1 like Chrome/118.0.5993.155 Safari/537.36';

let origin;
let worker;
before(async () => {
  origin = await startOrigin();
  worker = await startWorker({
    ORIGIN: origin.url,
    COUNTRY_HEADER: 'x-test-country',
    COUNTRY_GROUPS: JSON.stringify({ DACH: ['DE', 'AT', 'CH'] }),
    BYPASS_COOKIES: 'session, wordpress_logged_in_*',
    VARY_BY_PATH: JSON.stringify({ '/ruled/': ['device'] }),
  });
});
after(async () => {
  await worker?.dispose();
  await origin?.close();
});

/** An origin route that echoes the URL, device and country it saw. */
function echo(path, headers = {}) {
  origin.route(path, (req) => ({
    headers: { 'cache-control': 'max-age=60', ...headers },
    body: JSON.stringify({ url: req.url, device: req.headers['cf-device-type'], country: req.headers['cf-ipcountry'], cookie: req.headers.cookie ?? null }),
  }));
}
const seen = (res) => JSON.parse(res.body);
/** The bytes a browser sends for `text`, as the Latin-1 string fetch takes for a header (and Node's origin gives back). */
const utf8 = (text) => Buffer.from(text).toString('latin1');

test('query order and tracking parameters do not split the cache; the origin sees the client\'s query less tracking', async () => {
  echo('/norm');
  const first = await worker.fetch('/norm?b=2&a=1&utm_source=mail&utm_medium=x');
  assert.equal(seen(first).url, '/norm?b=2&a=1');
  await worker.stored('/norm?a=1&b=2');
  for (const variant of ['/norm?a=1&b=2', '/norm?gclid=1&b=2&a=1', '/norm?a=%31&b=2&fbclid=z']) {
    assert.match((await worker.fetch(variant)).cacheStatus, /hit/, variant);
  }
  assert.match((await worker.fetch('/norm?a=1&b=3')).cacheStatus, /fwd=uri-miss/);
  assert.equal(origin.calls('/norm').length, 2);
});

test('the host is part of the key', async () => {
  echo('/hosted');
  await worker.fetch('http://one.test/hosted');
  await worker.stored('http://one.test/hosted');
  assert.match((await worker.fetch('http://ONE.test/hosted')).cacheStatus, /hit/);
  assert.match((await worker.fetch('http://two.test/hosted')).cacheStatus, /fwd=uri-miss/);
});

/**
 * Under `Vary: CF-Device-Type`, two phone agents share one entry and each of
 * `others` (class → agent) gets its own: the origin is asked once per class.
 */
async function deviceVariants(path, [phone, otherPhone], others) {
  echo(path, { vary: 'CF-Device-Type' });
  assert.equal(seen(await worker.fetch(path, { headers: { 'user-agent': phone } })).device, 'mobile');
  await worker.stored(path, { 'user-agent': phone });
  const shared = await worker.fetch(path, { headers: { 'user-agent': otherPhone } });
  assert.match(shared.cacheStatus, /hit/);
  assert.equal(seen(shared).device, 'mobile');
  for (const [device, agent] of Object.entries(others)) {
    assert.equal(seen(await worker.fetch(path, { headers: { 'user-agent': agent } })).device, device);
  }
  assert.equal(origin.calls(path).length, 1 + Object.keys(others).length);
}

test('Vary: CF-Device-Type: two iPhones share an entry, a tablet and a desktop get their own', async () => {
  await deviceVariants('/device', [IPHONE_15, IPHONE_12], { tablet: IPAD, desktop: DESKTOP });
  // A client cannot pick another device's variant by sending the header itself.
  const spoof = await worker.fetch('/device', { headers: { 'user-agent': DESKTOP, 'cf-device-type': 'mobile' } });
  assert.equal(seen(spoof).device, 'desktop');
});

test('Sec-CH-UA-Mobile makes a client mobile', async () => {
  echo('/hint', { vary: 'CF-Device-Type' });
  assert.equal(seen(await worker.fetch('/hint', { headers: { 'user-agent': DESKTOP, 'sec-ch-ua-mobile': '?1' } })).device, 'mobile');
});

test('Vary: CF-IPCountry: a German desktop and a German phone share the country entry; groups collapse', async () => {
  echo('/country', { vary: 'CF-IPCountry' });
  const de = await worker.fetch('/country', { headers: { 'x-test-country': 'de', 'user-agent': DESKTOP } });
  assert.equal(seen(de).country, 'DACH');
  await worker.stored('/country', { 'x-test-country': 'DE' });
  assert.match((await worker.fetch('/country', { headers: { 'x-test-country': 'DE', 'user-agent': IPHONE_15 } })).cacheStatus, /hit/);
  assert.match((await worker.fetch('/country', { headers: { 'x-test-country': 'AT' } })).cacheStatus, /hit/);
  const fr = await worker.fetch('/country', { headers: { 'x-test-country': 'FR' } });
  assert.match(fr.cacheStatus, /fwd=vary-miss/);
  assert.equal(seen(fr).country, 'FR');
  assert.equal(seen(await worker.fetch('/country', { headers: { 'x-test-country': 'not a country' } })).country, 'XX');
  assert.equal(origin.calls('/country').length, 3);
});

test('without COUNTRY_HEADER the country comes from request.cf', async () => {
  echo('/cf-country');
  const plain = await startWorker({ ORIGIN: origin.url });
  try {
    const res = await plain.fetch('/cf-country', { cf: { country: 'JP' }, headers: { 'cf-ipcountry': 'US' } });
    assert.equal(seen(res).country, 'JP');
  } finally {
    await plain.dispose();
  }
});

test('Android agents are classed by the device model: two phones share an entry, a tablet that says Mobile and a TV box do not', async () => {
  await deviceVariants('/android', [GALAXY_S23, PIXEL_7], { tablet: TABLET_SAYING_MOBILE, desktop: FIRE_TV });
  // A translated agent (UTF-8 Cyrillic, from the data set) is classed, and reaches the origin byte-exact.
  const translated = utf8('Mozilla / 5.0 (Linux; Android 4.2.2; Mytab-U55GT Build / JDQ39) AppleWebKit / 537.36 (KHTML, как Gecko) Chrome / 71.0.3578.99 Safari / 537.36 OPR / 50.3.2426.136976');
  echo('/translated');
  assert.equal(seen(await worker.fetch('/translated', { headers: { 'user-agent': translated } })).device, 'tablet');
  assert.equal(origin.calls('/translated')[0].headers['user-agent'], translated);
});

test('the worker in workerd agrees with the labelled data set, 97% or more in every class', async () => {
  // Every 8th row (about 4,600, over 600 in each class, so sampling cannot move a
  // class by a point), sent as a client would (UTF-8, hint included), 16 at a time.
  const rows = readFileSync(new URL('../data/user-agents.tsv', import.meta.url), 'utf8')
    .split('\n').slice(1).filter((line, i) => line && i % 8 === 0)
    .map((line) => line.split('\t'));
  origin.route('/classify', (req) => ({ headers: { 'cache-control': 'no-store' }, body: req.headers['cf-device-type'] }));
  const confusion = { mobile: {}, tablet: {}, desktop: {} };
  let next = 0;
  const client = async () => {
    while (next < rows.length) {
      const [label, hint, agent] = rows[next++];
      const headers = { 'user-agent': utf8(agent), ...(hint ? { 'sec-ch-ua-mobile': hint } : {}) };
      const { body } = await worker.fetch('/classify', { headers });
      confusion[label][body] = (confusion[label][body] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 16 }, client));
  console.log('labelled → classified by the worker', confusion);
  for (const [label, row] of Object.entries(confusion)) {
    const total = Object.values(row).reduce((a, b) => a + b, 0);
    assert.ok(total > 600, `${label}: only ${total} rows`);
    assert.ok(row[label] / total >= 0.97, `${label}: ${row[label]} of ${total} agree`);
  }
  assert.equal(origin.calls('/classify').length, rows.length);
});

test('Vary: User-Agent is keyed on the raw agent by default', async () => {
  echo('/ua', { vary: 'User-Agent' });
  await worker.fetch('/ua', { headers: { 'user-agent': IPHONE_15 } });
  await worker.stored('/ua', { 'user-agent': IPHONE_15 });
  assert.match((await worker.fetch('/ua', { headers: { 'user-agent': IPHONE_15 } })).cacheStatus, /hit/);
  assert.match((await worker.fetch('/ua', { headers: { 'user-agent': IPHONE_12 } })).cacheStatus, /fwd=vary-miss/);
});

test('VARY_BY_PATH matches every spelling an origin reads as the same path', async () => {
  echo('/RULED/spelled'); // the origin sees the path as sent; the rule reads it leniently
  await worker.fetch('/RULED/spelled', { headers: { 'user-agent': IPHONE_15 } });
  await worker.stored('/RULED/spelled', { 'user-agent': IPHONE_15 });
  const desktop = await worker.fetch('/RULED/spelled', { headers: { 'user-agent': DESKTOP } });
  assert.match(desktop.cacheStatus, /fwd=vary-miss/);
  assert.equal(seen(desktop).device, 'desktop');
});

test('COUNTRY_HEADER is read by the cache and never reaches the origin', async () => {
  echo('/country-header');
  await worker.fetch('/country-header', { headers: { 'x-test-country': 'AT' } });
  const sent = origin.calls('/country-header')[0].headers;
  assert.equal(sent['x-test-country'], undefined);
  assert.equal(sent['cf-ipcountry'], 'DACH');
});

test('VARY_BY_PATH keys a path on device without the origin saying so', async () => {
  echo('/ruled/page');
  await worker.fetch('/ruled/page', { headers: { 'user-agent': IPHONE_15 } });
  await worker.stored('/ruled/page', { 'user-agent': IPHONE_15 });
  assert.match((await worker.fetch('/ruled/page', { headers: { 'user-agent': IPHONE_12 } })).cacheStatus, /hit/);
  const desktop = await worker.fetch('/ruled/page', { headers: { 'user-agent': DESKTOP } });
  assert.match(desktop.cacheStatus, /fwd=vary-miss/);
  assert.equal(seen(desktop).device, 'desktop');
});

test('BYPASS_COOKIES: the request bypasses the cache with all its cookies, and nothing is stored', async () => {
  echo('/account');
  // Malformed pairs and UTF-8 text around a bypass cookie neither hide it nor
  // lose a byte on the way to the origin.
  for (const cookie of ['theme=dark; session=s1', 'wordpress_logged_in_abc=1', utf8(';;=x; name=José € Хонор;; session=s2 ;=')]) {
    const res = await worker.fetch('/account', { headers: { cookie } });
    assert.equal(res.cacheStatus, 'edge-cache; fwd=bypass; fwd-status=200; detail=cookie');
    assert.equal(seen(res).cookie, cookie);
  }
  const anonymous = await worker.fetch('/account');
  assert.match(anonymous.cacheStatus, /fwd=uri-miss/);
  assert.equal(origin.calls('/account').length, 4);
});

test('other request cookies are not part of the key', async () => {
  echo('/public');
  await worker.fetch('/public', { headers: { cookie: 'theme=dark' } });
  await worker.stored('/public');
  assert.match((await worker.fetch('/public', { headers: { cookie: 'theme=light; lang=de' } })).cacheStatus, /hit/);
  assert.match((await worker.fetch('/public', { headers: { cookie: ';;;=;;bad cookie;;' } })).cacheStatus, /hit/);
  assert.equal(origin.calls('/public').length, 1);
});

test('10,000 query parameters get one key in any order; a URL too long for the runtime never reaches the origin', async () => {
  echo('/params');
  const params = Array.from({ length: 10_000 }, (_, i) => `${i.toString(36)}=`);
  const first = await worker.fetch(`/params?${params.join('&')}`);
  assert.equal(first.status, 200);
  await worker.stored(`/params?${params.join('&')}`);
  const reversed = await worker.fetch(`/params?${params.reverse().join('&')}`);
  assert.match(reversed.cacheStatus, /hit/);
  assert.equal(origin.calls('/params').length, 1);
  // workerd refuses a request head past 64 KB itself (431) before the worker runs,
  // which leaves the worker's own 414 (a URL http::Uri cannot hold) as a fallback.
  const huge = await worker.fetch(`/params?q=${'x'.repeat(70_000)}`);
  assert.ok([414, 431].includes(huge.status), `status ${huge.status}`);
  assert.equal(origin.calls('/params').length, 1);
});

test('Vary: Cookie is not stored', async () => {
  echo('/vary-cookie', { vary: 'Cookie' });
  assert.match((await worker.fetch('/vary-cookie')).cacheStatus, /detail=vary-cookie$/);
});

test('private="Set-Cookie": stored without the cookie, which only the client that caused the fill gets', async () => {
  origin.route('/qualified', { headers: { 'cache-control': 'max-age=60, private="Set-Cookie"', 'set-cookie': 'visitor=1' }, body: 'x' });
  const miss = await worker.fetch('/qualified');
  assert.equal(miss.headers.get('set-cookie'), 'visitor=1');
  const hit = await worker.stored('/qualified');
  assert.equal(hit.headers.get('set-cookie'), null);
});

test('no-cache="Set-Cookie" is stored without the cookie; no-store keeps it and is not stored', async () => {
  origin.route('/nc-cookie', { headers: { 'cache-control': 'max-age=60, no-cache="Set-Cookie"', 'set-cookie': 'visitor=2' }, body: 'x' });
  assert.equal((await worker.fetch('/nc-cookie')).headers.get('set-cookie'), 'visitor=2');
  const hit = await worker.stored('/nc-cookie');
  assert.equal(hit.headers.get('set-cookie'), null);
  origin.route('/ns-cookie', { headers: { 'cache-control': 'no-store', 'set-cookie': 'sid=3' }, body: 'x' });
  const first = await worker.fetch('/ns-cookie');
  assert.equal(first.headers.get('set-cookie'), 'sid=3');
  assert.match(first.cacheStatus, /detail=no-store/);
  assert.equal((await worker.fetch('/ns-cookie')).headers.get('set-cookie'), 'sid=3');
  assert.equal(origin.calls('/ns-cookie').length, 2);
});

test('poisoning inputs never reach the origin on a cacheable request', async () => {
  origin.route('/poison', (req) => ({ headers: { 'cache-control': 'max-age=60' }, body: JSON.stringify(req.headers) }));
  const res = await worker.fetch('/poison', {
    headers: { 'x-forwarded-host': 'evil.test', 'x-original-url': '/admin', 'x-rewrite-url': '/admin', 'x-forwarded-scheme': 'http', 'x-http-method-override': 'DELETE' },
  });
  const received = JSON.parse(res.body);
  for (const name of ['x-forwarded-host', 'x-original-url', 'x-rewrite-url', 'x-forwarded-scheme', 'x-http-method-override']) {
    assert.equal(received[name], undefined, name);
  }
});

test('nothing is cached by file extension alone (web cache deception)', async () => {
  origin.route('/account.php/style.css', { headers: { 'content-type': 'text/css' }, body: 'per-user page' });
  assert.match((await worker.fetch('/account.php/style.css')).cacheStatus, /detail=no-freshness$/);
  await worker.fetch('/account.php/style.css');
  assert.equal(origin.calls('/account.php/style.css').length, 2);
});

test('absurd user agents and headers get a sane answer', async () => {
  echo('/absurd', { vary: 'CF-Device-Type, User-Agent' });
  for (const ua of ['', 'x'.repeat(8000), '\u00e9\u00e8 iPhone', 'Mozilla/5.0 (' + '('.repeat(2000)]) {
    const res = await worker.fetch('/absurd', { headers: { 'user-agent': ua, 'sec-ch-ua-mobile': '?maybe' } });
    assert.equal(res.status, 200);
    assert.ok(['mobile', 'tablet', 'desktop'].includes(seen(res).device));
  }
});
