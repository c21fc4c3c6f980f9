// Motion events, reset and threshold sync between two dashboards, with a
// synthetic scene that moves all the time.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLookout, api } from './lib/server.mjs';
import { launch, openPage, until } from './lib/browser.mjs';

let server;
let browser;

before(async () => {
  server = await startLookout({ source: 'synthetic:?size=640x360&fps=15&motion=always' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a motion event appears in Recent events with a thumbnail', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await page.waitForFunction(() => document.getElementById('conn-events').dataset.state === 'ok');
    // The raw events: the camera view opens on its incidents.
    await page.locator('#show-raw').click();
    // The event arrives live over /events, or is in the history the page
    // read at start; either way it must show (a late history answer must
    // not wipe an event that came live).
    await api(server, '/config', { method: 'POST', body: { threshold: 1 } });
    await page.waitForFunction(() => {
      const img = document.querySelector('#events li[data-kind="motion"] a.thumb img');
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: 15000 });
    const item = page.locator('#events li[data-kind="motion"]').first();
    assert.match(await item.locator('a.thumb').getAttribute('href'), /^\/snaps\/motion-/);
    assert.match(await item.locator('time').textContent(), /\d/);
    await page.waitForFunction(() => Number(document.getElementById('trigger-count').textContent) >= 1);
    // The level graph got data and the label shows the level (a score, not a percentage).
    await page.waitForFunction(() => /^score \d/.test(document.getElementById('level-value').textContent));
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('reset and threshold changes show in a second open dashboard', async () => {
  await api(server, '/config', { method: 'POST', body: { threshold: 1 } });
  await until(async () => (await api(server, '/config')).trigger_count >= 1, { timeout: 15000, what: 'a trigger' });
  // Two separate browser contexts: two people, two phones.
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const a = await openPage(ctxA, server.url + '/');
    const b = await openPage(ctxB, server.url + '/');
    for (const p of [a, b]) {
      await p.waitForFunction(() => ['conn-events', 'conn-control'].every((id) => document.getElementById(id).dataset.state === 'ok'));
      await p.waitForFunction(() => Number(document.getElementById('trigger-count').textContent) >= 1);
    }

    // Threshold from A (to 100, which also stops new motion episodes).
    await a.locator('#threshold').fill('100');
    await b.waitForFunction(() => document.getElementById('threshold').value === '100'
      && document.getElementById('threshold-value').textContent.trim() === '100', null, { timeout: 5000 });

    // Reset from A: both show 0 within a second.
    await a.click('#reset-btn');
    await a.locator('.toast', { hasText: 'Counter reset' }).waitFor({ timeout: 5000 });
    for (const p of [a, b]) {
      await p.waitForFunction(() => document.getElementById('trigger-count').textContent.trim() === '0', null, { timeout: 5000 });
    }
    assert.equal((await api(server, '/config')).trigger_count, 0);
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems, []);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
