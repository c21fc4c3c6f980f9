// A camera that never delivers: the page must say so, and buttons must answer.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLookout } from './lib/server.mjs';
import { launch, openPage } from './lib/browser.mjs';

let server;
let browser;

before(async () => {
  server = await startLookout({ source: 'exec:exit 1' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('"camera offline" shows when the source is down', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await page.waitForFunction(() => /camera offline/.test(document.getElementById('camera-state').textContent), null, { timeout: 10000 });
    assert.ok(await page.locator('#camera-state').isVisible());
    assert.equal(await page.locator('#camera-state').getAttribute('data-state'), 'offline');

    // Snapshot with no frame: the reason reaches the person.
    await page.waitForFunction(() => document.getElementById('conn-control').dataset.state === 'ok');
    await page.click('#snap-btn');
    await page.locator('.toast-error', { hasText: 'no frame yet' }).waitFor({ timeout: 5000 });
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});
