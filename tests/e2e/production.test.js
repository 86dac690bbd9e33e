// What holds behind a real Cloudflare zone: the names the origin receives
// the device class and country under, the URL it is asked for (signed
// URLs), and the warning where the Cache API does nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startOrigin, startWorker, sleep, IPHONE, DESKTOP } from './harness.js';

const SECRET = 'origin-signing-secret';

let origin;
let worker;
before(async () => {
  origin = await startOrigin();
  worker = await startWorker({ ORIGIN: origin.url, COUNTRY_HEADER: 'x-test-country', COUNTRY_GROUPS: JSON.stringify({ DACH: ['DE', 'AT'] }) });
});
after(async () => {
  await worker?.dispose();
  await origin?.close();
});

/** Answers with the traits the origin received under every name. */
function traits(path, vary) {
  origin.route(path, (req) => ({
    headers: { 'cache-control': 'max-age=600', ...(vary ? { vary } : {}) },
    body: JSON.stringify(Object.fromEntries(['x-edge-device-type', 'x-edge-country', 'cf-device-type', 'cf-ipcountry', 'x-class', 'x-geo'].map((n) => [n, req.headers[n] ?? null]))),
  }));
}

test('the origin gets the device class and country under X-Edge-* and CF-* names; none can be forged', async () => {
  traits('/names');
  const forged = { 'user-agent': IPHONE, 'x-test-country': 'at', 'x-edge-device-type': 'desktop', 'x-edge-country': 'US', 'cf-device-type': 'tablet', 'cf-ipcountry': 'FR' };
  const res = await worker.fetch('/names', { headers: forged });
  assert.deepEqual(JSON.parse(res.body), { 'x-edge-device-type': 'mobile', 'x-edge-country': 'DACH', 'cf-device-type': 'mobile', 'cf-ipcountry': 'DACH', 'x-class': null, 'x-geo': null });
  const sent = origin.calls('/names')[0].rawHeaders;
  for (const name of ['x-edge-device-type', 'x-edge-country', 'cf-device-type', 'cf-ipcountry']) {
    assert.equal(sent.filter((n, i) => i % 2 === 0 && n.toLowerCase() === name).length, 1, `${name} is sent once`);
  }
});

test('without COUNTRY_HEADER the runtime\'s country (request.cf) reaches the origin and picks variants; a forged one never does', async () => {
  const w = await startWorker({ ORIGIN: origin.url });
  // `stored` with the runtime's country: the harness's sends the placeholder's.
  const stored = async (path, country) => {
    for (let i = 0; i < 100; i++) {
      const res = await w.fetch(path, { headers: { 'cache-control': 'only-if-cached' }, cf: { country } });
      if (res.status !== 504) return;
      await sleep(20);
    }
    throw new Error(`${path} was never stored for ${country}`);
  };
  try {
    const forged = { 'x-edge-country': 'FR', 'cf-ipcountry': 'FR' };
    traits('/cf-plain');
    const miss = await w.fetch('/cf-plain', { headers: forged, cf: { country: 'DE' } });
    assert.equal(JSON.parse(miss.body)['x-edge-country'], 'DE');
    await stored('/cf-plain', 'DE');
    // A hit that does not vary by country serves what was stored, whoever asks.
    const hit = await w.fetch('/cf-plain', { cf: { country: 'JP' } });
    assert.match(hit.cacheStatus, /hit/);
    assert.equal(JSON.parse(hit.body)['x-edge-country'], 'DE');
    traits('/cf-vary', 'X-Edge-Country');
    for (const country of ['DE', 'JP']) {
      const first = await w.fetch('/cf-vary', { headers: forged, cf: { country } });
      assert.equal(JSON.parse(first.body)['x-edge-country'], country);
      await stored('/cf-vary', country);
    }
    for (const country of ['DE', 'JP']) {
      const again = await w.fetch('/cf-vary', { headers: forged, cf: { country } });
      assert.match(again.cacheStatus, /hit/);
      assert.equal(JSON.parse(again.body)['x-edge-country'], country);
    }
    assert.equal(origin.calls('/cf-vary').length, 2);
  } finally {
    await w.dispose();
  }
});

test('a client\'s Connection cannot take the stamped traits off the origin request and poison a variant', async () => {
  origin.route('/connection', (req) => ({ headers: { 'cache-control': 'max-age=600', vary: 'X-Edge-Country' }, body: `country=${req.headers['x-edge-country'] ?? 'none'}` }));
  const attack = await worker.raw('/connection', [['X-Test-Country', 'de'], ['Connection', 'X-Edge-Country, CF-IPCountry']]);
  assert.equal(attack.body.toString(), 'country=DACH');
  await worker.stored('/connection', { 'x-test-country': 'de' });
  const victim = await worker.fetch('/connection', { headers: { 'x-test-country': 'de' } });
  assert.match(victim.cacheStatus, /hit/);
  assert.equal(victim.body, 'country=DACH');
  assert.equal(origin.calls('/connection').length, 1);
});

test('spellings with other punctuation for - cannot forge the traits, on any method (CGI and PHP read them as the same name)', async () => {
  origin.route('/underscores', () => ({ headers: { 'cache-control': 'no-store' }, body: 'ok' }));
  const forged = { 'x_edge_country': 'US', 'x_edge_device_type': 'tablet', 'cf_ipcountry': 'US', 'cf_device_type': 'tablet', 'x.edge.country': 'US', 'x+edge+device+type': 'tablet', 'x_test.country': 'us', 'x_other': 'kept' };
  for (const method of ['GET', 'POST']) {
    const res = await worker.fetch('/underscores', { method, headers: forged, body: method === 'POST' ? 'x' : undefined });
    assert.equal(res.status, 200);
  }
  const [get, post] = origin.calls('/underscores').map((c) => c.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()));
  for (const sent of [get, post]) {
    for (const name of Object.keys(forged).filter((n) => n !== 'x_other')) assert.ok(!sent.includes(name), `${name} not sent: ${sent}`);
  }
  // An unrelated field with an underscore still reaches the origin on a request it does not cache.
  assert.ok(post.includes('x_other'));
});

test('ORIGIN_DEVICE_HEADER and ORIGIN_COUNTRY_HEADER rename ours; a cf- name and a two-letter country group are refused', async () => {
  const renamed = await startWorker({ ORIGIN: origin.url, COUNTRY_HEADER: 'x-test-country', ORIGIN_DEVICE_HEADER: 'X-Class', ORIGIN_COUNTRY_HEADER: 'X-Geo' });
  const refused = await startWorker({ ORIGIN: origin.url, ORIGIN_DEVICE_HEADER: 'CF-Device' });
  // Namibia's code: its clients would share the group's variant.
  const grouped = await startWorker({ ORIGIN: origin.url, COUNTRY_GROUPS: JSON.stringify({ NA: ['US', 'CA'] }) });
  try {
    traits('/renamed');
    const forged = { 'x-class': 'mobile', 'x-geo': 'US', 'x-edge-device-type': 'mobile', 'x-edge-country': 'US' };
    const res = await renamed.fetch('/renamed', { headers: { 'user-agent': DESKTOP, 'x-test-country': 'jp', ...forged } });
    const seen = JSON.parse(res.body);
    assert.equal(seen['x-class'], 'desktop');
    assert.equal(seen['x-geo'], 'JP');
    // The default names are not ours any more, but an origin may still read them.
    assert.equal(seen['x-edge-device-type'], null);
    assert.equal(seen['x-edge-country'], null);
    const broken = await refused.fetch('/renamed');
    assert.equal(broken.status, 500);
    assert.match(broken.body, /ORIGIN_DEVICE_HEADER.*cf-/);
    const ambiguous = await grouped.fetch('/renamed');
    assert.equal(ambiguous.status, 500);
    assert.match(ambiguous.body, /COUNTRY_GROUPS.*"NA" reads as a country code/);
  } finally {
    await renamed.dispose();
    await refused.dispose();
    await grouped.dispose();
  }
});

for (const vary of ['X-Edge-Country', 'CF-IPCountry']) {
  test(`Vary: ${vary} keys on the normalised country; the client cannot choose its variant`, async () => {
    const path = `/vary-${vary}`;
    traits(path, vary);
    const de = await worker.fetch(path, { headers: { 'x-test-country': 'de', 'x-edge-country': 'US', 'cf-ipcountry': 'US' } });
    assert.equal(JSON.parse(de.body)['x-edge-country'], 'DACH');
    const at = await worker.stored(path, { 'x-test-country': 'at' });
    assert.match(at.cacheStatus, /; hit/);
    assert.equal(JSON.parse(at.body)['x-edge-country'], 'DACH');
    // A French client claiming the DACH variant under either name gets its own.
    const fr = await worker.fetch(path, { headers: { 'x-test-country': 'fr', 'x-edge-country': 'DACH', 'cf-ipcountry': 'DACH' } });
    assert.match(fr.cacheStatus, /fwd=vary-miss/);
    assert.equal(JSON.parse(fr.body)['x-edge-country'], 'FR');
    assert.equal(origin.calls(path).length, 2);
  });
}

/** An origin that checks an HMAC over the path and query before `&sig=`, byte for byte. */
function signedOrigin(path) {
  origin.route(path, (req) => {
    const [signed, sig] = req.url.split('&sig=');
    const ok = sig === createHmac('sha256', SECRET).update(signed).digest('hex');
    return ok ? { headers: { 'cache-control': 'max-age=600' }, body: `signed ${signed}` } : { status: 403, headers: { 'cache-control': 'no-store' }, body: 'bad signature' };
  });
}
const sign = (pathAndQuery) => `${pathAndQuery}&sig=${createHmac('sha256', SECRET).update(pathAndQuery).digest('hex')}`;

test('a signed URL reaches the origin in its own parameter order, less tracking parameters, and is cached', async () => {
  signedOrigin('/signed');
  const url = sign('/signed?z=1&file=a%2Fb~&a=%C3%A9');
  const first = await worker.fetch(`${url}&utm_source=mail`);
  assert.equal(first.status, 200, first.body);
  assert.equal(origin.calls('/signed')[0].url, url);
  const again = await worker.stored(url);
  assert.match(again.cacheStatus, /; hit/);
  assert.equal(origin.calls('/signed').length, 1);
});

test('the origin sees escapes as the key holds them: one client\'s spelling cannot be stored for others', async () => {
  // An origin that routes on raw bytes: only `/about` exists.
  origin.route('/about', { headers: { 'cache-control': 'max-age=600' }, body: 'about page' });
  origin.route('/%61bout', { status: 404, headers: { 'cache-control': 'max-age=600' }, body: 'not found' });
  const attacker = await worker.fetch('/%61bout?q=%41');
  assert.equal(attacker.body, 'about page');
  assert.equal(origin.calls('/%61bout').length, 0);
  assert.equal(origin.calls('/about')[0].url, '/about?q=A');
  assert.equal((await worker.fetch('/about?q=A')).body, 'about page');
});

test('ORIGIN_URL=normalized asks the origin for the key: sorted, escapes normalised', async () => {
  const normalized = await startWorker({ ORIGIN: origin.url, ORIGIN_URL: 'normalized' });
  try {
    signedOrigin('/signed-n');
    const res = await normalized.fetch(sign('/signed-n?z=1&a=%41'));
    assert.equal(res.status, 403);
    assert.match(origin.calls('/signed-n')[0].url, /^\/signed-n\?a=A&sig=[0-9a-f]+&z=1$/);
  } finally {
    await normalized.dispose();
  }
});

test('on a workers.dev host the worker says once per isolate that nothing is cached there', async () => {
  origin.route('/dev-host', { headers: { 'cache-control': 'max-age=600' }, body: 'x' });
  const local = await startWorker({ ORIGIN: origin.url });
  try {
    await local.fetch('https://shop.test/dev-host');
    await sleep(100);
    assert.doesNotMatch(local.logs(), /workers\.dev/);
    for (let i = 0; i < 3; i++) assert.equal((await local.fetch('https://edge-cache.me.workers.dev/dev-host')).status, 200);
    await sleep(200);
    assert.equal(local.logs().match(/nothing is cached on edge-cache\.me\.workers\.dev/g)?.length, 1, local.logs());
  } finally {
    await local.dispose();
  }
});
