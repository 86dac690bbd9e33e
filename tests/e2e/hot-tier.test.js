// The in-isolate hot tier: a repeat hit is served from the isolate's memory
// without the Cache API, under the same freshness, Vary and purge rules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin, startWorker, sleep, IPHONE, DESKTOP } from './harness.js';

const TOKEN = 'hot-tier-admin-token-0123';
const cacheDir = mkdtempSync(join(tmpdir(), 'edge-cache-cache-'));

let origin;
let worker;
before(async () => {
  origin = await startOrigin();
  worker = await startWorker({ ORIGIN: origin.url, ADMIN_TOKEN: TOKEN, PURGE_REFRESH: '1' }, { cachePersist: cacheDir });
});
after(async () => {
  await worker?.dispose();
  await origin?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

const counted = (path, headers = {}) =>
  origin.route(path, (req, n) => ({ headers: { 'cache-control': 'max-age=600', ...headers }, body: `${path} #${n}${headers.vary ? ` ${req.headers['x-edge-device-type']}` : ''}` }));

/** Fetches `path` until it comes from memory: the first hit reads the Cache API and keeps it. */
async function fromMemory(w, path, headers = {}) {
  for (let i = 0; i < 100; i++) {
    const res = await w.fetch(path, { headers });
    if (/detail=memory/.test(res.cacheStatus)) return res;
    await sleep(20);
  }
  throw new Error(`${path} never came from memory`);
}

const purge = (body) => worker.fetch('/_admin/purge', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });

test('a repeat hit comes from memory without the Cache API', async () => {
  counted('/m');
  assert.match((await worker.fetch('/m')).cacheStatus, /fwd=uri-miss/);
  const stored = await worker.stored('/m');
  assert.doesNotMatch(stored.cacheStatus, /memory/, 'the first hit reads the Cache API');
  const hit = await fromMemory(worker, '/m');
  assert.equal(hit.body, '/m #1');
  assert.match(hit.cacheStatus, /^edge-cache; hit; ttl=\d+; detail=memory$/);
  // A second isolate of this location (same Cache API, no KV) deletes the
  // Cache API's copy: this isolate still serves its own, so it never asked.
  const other = await startWorker({ ORIGIN: origin.url, ADMIN_TOKEN: TOKEN, HOT_TIER_BYTES: '0' }, { cachePersist: cacheDir });
  try {
    assert.match((await other.fetch('/m')).cacheStatus, /; hit/, 'the Cache API is shared');
    assert.equal((await other.fetch('/_admin/purge', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{"urls": ["/m"]}' })).status, 200);
    assert.match((await other.fetch('/m')).cacheStatus, /fwd=/, 'gone from the Cache API');
  } finally {
    await other.dispose();
  }
  const still = await worker.fetch('/m');
  assert.match(still.cacheStatus, /detail=memory/);
  assert.equal(still.body, '/m #1');
});

test('a memory entry expires on time, and its revalidation replaces it', async () => {
  // Three seconds, not one: the store must land (and the entry be read
  // into memory) while it is fresh, even on a loaded machine.
  origin.route('/short', (req, n) => ({ headers: { 'cache-control': 'max-age=3', etag: `"v${n}"` }, body: `short #${n}` }));
  await worker.fetch('/short');
  await worker.stored('/short');
  await fromMemory(worker, '/short');
  await sleep(3100);
  const stale = await worker.fetch('/short');
  assert.doesNotMatch(stale.cacheStatus, /detail=memory/);
  assert.match(stale.cacheStatus, /fwd=stale/);
  assert.equal(stale.body, 'short #2');
  const fresh = await fromMemory(worker, '/short');
  assert.equal(fresh.body, 'short #2');
});

test('variants stay apart in memory', async () => {
  counted('/v', { vary: 'X-Edge-Device-Type' });
  await worker.fetch('/v', { headers: { 'user-agent': IPHONE } });
  await worker.fetch('/v', { headers: { 'user-agent': DESKTOP } });
  await worker.stored('/v', { 'user-agent': IPHONE });
  await worker.stored('/v', { 'user-agent': DESKTOP });
  const phone = await fromMemory(worker, '/v', { 'user-agent': IPHONE });
  const desk = await fromMemory(worker, '/v', { 'user-agent': DESKTOP });
  assert.match(phone.body, /mobile$/);
  assert.match(desk.body, /desktop$/);
  assert.equal(origin.calls('/v').length, 2);
});

for (const soft of [false, true]) {
  test(`a ${soft ? 'soft' : 'hard'} purge is honoured the moment it is made: memory does not serve the entry as it was`, async () => {
    const path = `/p-${soft ? 'soft' : 'hard'}`;
    counted(path, { 'cache-tag': path.slice(1) });
    await worker.fetch(path);
    await worker.stored(path);
    await fromMemory(worker, path);
    assert.equal((await purge({ tags: [path.slice(1)], soft })).status, 200);
    const after = await worker.fetch(path);
    assert.doesNotMatch(after.cacheStatus, /detail=memory/);
    if (soft) {
      assert.match(after.cacheStatus, /detail=soft-purged/);
      for (let i = 0; i < 100 && origin.calls(path).length < 2; i++) await sleep(20);
    } else {
      assert.match(after.cacheStatus, /detail=purged/);
      assert.equal(after.body, `${path} #2`);
    }
    assert.equal(origin.calls(path).length, 2);
    const refreshed = await fromMemory(worker, path);
    assert.equal(refreshed.body, `${path} #2`);
  });
}

test('memory stays under HOT_TIER_BYTES with many keys: the least recently used leave', async () => {
  const small = await startWorker({ ORIGIN: origin.url, HOT_TIER_BYTES: String(64 * 1024) });
  try {
    origin.route('/many', (req) => ({ headers: { 'cache-control': 'max-age=600' }, body: `${req.url} ${'x'.repeat(2000)}` }));
    const paths = Array.from({ length: 120 }, (_, i) => `/many?k=${i}`);
    for (const path of paths) {
      await small.fetch(path);
      await small.stored(path);
      await small.fetch(path);
    }
    let inMemory = 0;
    const held = [];
    for (const path of [...paths].reverse()) {
      const res = await small.fetch(path);
      assert.equal(res.body, `${path} ${'x'.repeat(2000)}`);
      if (/detail=memory/.test(res.cacheStatus)) {
        inMemory++;
        held.push(path);
      }
    }
    // Each entry takes a little over 2 KB: at most 32 fit in 64 KiB.
    assert.ok(inMemory > 0 && inMemory <= 32, `${inMemory} entries in memory`);
    assert.ok(held.includes(paths.at(-1)) && !held.includes(paths[0]), 'the newest stay, the oldest left');
  } finally {
    await small.dispose();
  }
});
