// The page survives a server restart: stream, events and control come back
// by themselves, and a button pressed while disconnected sends nothing.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLookout, api } from './lib/server.mjs';
import { launch, openPage } from './lib/browser.mjs';

let server;
let browser;

after(async () => {
  await browser?.close();
  await server?.stop();
});

const state = (page, id) => page.locator(`#${id}`).getAttribute('data-state');

test('the dashboard reconnects after lookout restarts', async () => {
  const source = 'synthetic:?size=320x180&fps=15&motion=always';
  server = await startLookout({ source });
  browser = await launch();
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await page.waitForFunction(() => ['conn-stream', 'conn-events', 'conn-control']
      .every((id) => document.getElementById(id).dataset.state === 'ok'));
    const firstSrc = await page.locator('#stream').getAttribute('src');

    const { port, dataDir } = server;
    await server.stop({ keepData: true });
    await page.waitForFunction(() => document.getElementById('conn-control').dataset.state === 'bad');

    // Not connected: the reset is refused on the spot, not queued for later.
    await page.click('#reset-btn');
    await page.locator('.toast-error', { hasText: 'Not connected' }).waitFor({ timeout: 5000 });

    server = await startLookout({ source, listen: `127.0.0.1:${port}`, dataDir });
    await page.waitForFunction(() => ['conn-stream', 'conn-events', 'conn-control']
      .every((id) => document.getElementById(id).dataset.state === 'ok'), null, { timeout: 20000 });
    await page.waitForFunction((src) => {
      const img = document.getElementById('stream');
      return img.getAttribute('src') !== src && img.naturalWidth === 320;
    }, firstSrc, { timeout: 10000 });
    // No reset reached the new server (it would be in the history).
    const kinds = (await api(server, '/api/events?limit=100')).events.map((e) => e.kind);
    assert.ok(!kinds.includes('reset'), `unexpected reset in ${kinds}`);
    // The browser logs failed connections while the server is down; nothing else.
    const other = page.problems.filter((p) => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|WebSocket connection|net::ERR_/.test(p));
    assert.deepEqual(other, []);
  } finally {
    await context.close();
  }
});
