// Parsed heads: a Cache API hit reuses the fields this isolate parsed at an
// earlier read of the same stored copy, and reads them anew once the copy
// was replaced, here by another isolate of the same location.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin, startWorker } from './harness.js';

const TOKEN = 'heads-admin-token-0123456789';
const cacheDir = mkdtempSync(join(tmpdir(), 'edge-cache-heads-'));
// The hot tier off: every hit reads the Cache API.
const vars = (origin) => ({ ORIGIN: origin.url, ADMIN_TOKEN: TOKEN, HOT_TIER_BYTES: '0' });

let origin;
let first;
let second;
before(async () => {
  origin = await startOrigin();
  first = await startWorker(vars(origin), { cachePersist: cacheDir });
  second = await startWorker(vars(origin), { cachePersist: cacheDir });
});
after(async () => {
  await first?.dispose();
  await second?.dispose();
  await origin?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

test('a stored copy replaced by another isolate is served with its own fields', async () => {
  origin.route('/h', (req, n) => ({
    headers: { 'cache-control': 'max-age=600', etag: `"v${n}"`, 'x-version': String(n) },
    body: n === 1 ? 'first' : 'second, longer',
  }));
  await first.fetch('/h');
  await first.stored('/h');
  // Hits that read the Cache API: the first isolate has parsed this head.
  for (let i = 0; i < 2; i++) {
    const hit = await first.fetch('/h');
    assert.match(hit.cacheStatus, /; hit/);
    assert.deepEqual([hit.body, hit.headers.get('x-version'), hit.headers.get('etag')], ['first', '1', '"v1"']);
  }
  // The other isolate drops the copy (a URL purge reaches only its own KV
  // here) and stores the origin's next answer at the same URL.
  const purged = await second.fetch('/_admin/purge', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{"urls": ["/h"]}' });
  assert.equal(purged.status, 200);
  assert.equal((await second.fetch('/h')).body, 'second, longer');
  await second.stored('/h');
  // The first isolate knows of no purge: it hits, on the new copy, with the
  // new copy's fields, not the ones it parsed before.
  const hit = await first.fetch('/h');
  assert.match(hit.cacheStatus, /; hit/);
  assert.equal(hit.body, 'second, longer');
  assert.equal(hit.headers.get('x-version'), '2');
  assert.equal(hit.headers.get('etag'), '"v2"');
  // A conditional request is judged on the new validator.
  const revalidated = await first.fetch('/h', { headers: { 'if-none-match': '"v2"' } });
  assert.equal(revalidated.status, 304);
  assert.equal(origin.calls('/h').length, 2);
});
