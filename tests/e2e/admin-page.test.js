// The admin page in headless Chromium (Debian's, driven by playwright-core):
// a person types the token, purges a tag, sees the result and the list,
// and sees a clear error for a wrong token; the page's strict CSP holds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startOrigin, startWorker } from './harness.js';

const TOKEN = 'page-admin-token-0123456789';
let origin;
let worker;
let browser;
before(async () => {
  origin = await startOrigin();
  worker = await startWorker({ ORIGIN: origin.url, ADMIN_TOKEN: TOKEN, PURGE_REFRESH: '1' });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
after(async () => {
  await browser?.close();
  await worker?.dispose();
  await origin?.close();
});

test('the admin page purges a tag, lists it, and shows errors plainly', async () => {
  origin.route('/shelf', (req, n) => ({ headers: { 'cache-control': 'max-age=600', 'cache-tag': 'shelf' }, body: `shelf #${n}` }));
  await worker.fetch('/shelf');
  await worker.stored('/shelf');
  const page = await browser.newPage();
  const problems = [];
  // HTTP errors the page asked for (the wrong token's 401s) are not script errors.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  const res = await page.goto(`${worker.url}_admin`);
  assert.equal(res.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/_admin/', 'redirected so relative links resolve');
  assert.equal(await page.title(), 'edge-cache admin');

  // A wrong token: the error is shown, nothing is purged.
  await page.fill('#token', 'not-the-token-at-all-0000');
  await page.click('#token-form button[type=submit]');
  await page.fill('#items', 'shelf');
  await page.click('#purge-form button[type=submit]');
  await page.waitForSelector('#result.error');
  assert.match(await page.textContent('#result'), /401/);
  assert.match((await worker.fetch('/shelf')).cacheStatus, /^edge-cache; hit/);

  await page.fill('#token', TOKEN);
  await page.click('#token-form button[type=submit]');
  await page.fill('#items', 'shelf');
  await page.click('#purge-form button[type=submit]');
  await page.waitForFunction(() => /Purged/.test(document.querySelector('#result').textContent));
  assert.match(await page.textContent('#result'), /Purged \(hard\), id [0-9a-f]{12}\. Every location within 61 s\./);
  await page.waitForFunction(() => document.querySelectorAll('#purges tbody tr').length > 0);
  assert.match(await page.textContent('#purges tbody tr'), /tag shelf/);
  assert.match(await page.textContent('#bound'), /61 s/);
  const next = await worker.fetch('/shelf');
  assert.match(next.cacheStatus, /purged/);
  assert.equal(next.body, 'shelf #2', 'the next request refetched it');
  // The token stays in this tab's sessionStorage, never in a cookie or localStorage.
  assert.equal(await page.evaluate(() => document.cookie), '');
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  // SCREENSHOT=docs/admin-page.png refreshes the README's picture.
  await page.screenshot({ path: process.env.SCREENSHOT ?? '/tmp/edge-cache-admin-page.png', fullPage: true });
  assert.deepEqual(problems, [], 'no script errors or CSP violations');
  await page.close();
});
