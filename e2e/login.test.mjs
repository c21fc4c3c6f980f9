// Signing in from a browser when credentials are required (as off loopback):
// the login page, the session cookie, and a dashboard that works with it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLookout } from './lib/server.mjs';
import { launch, openPage } from './lib/browser.mjs';

const PASSWORD = 'correct horse battery';
let server;
let browser;

before(async () => {
  server = await startLookout({
    source: 'synthetic:?size=640x360&fps=15&motion=never',
    args: ['--require-auth'],
    env: { LOOKOUT_PASSWORD: PASSWORD },
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a browser is sent to the login page, signs in and gets the dashboard', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    // Not signed in: the login form, not the dashboard.
    assert.match(new URL(page.url()).pathname, /^\/login$/);
    await page.fill('input[name="pass"]', 'wrong password');
    await page.click('button[type="submit"]');
    await page.locator('.error').waitFor();
    assert.match(page.url(), /error=1/);

    await page.fill('input[name="pass"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(server.url + '/');
    // The cookie carries the stream, the event feed and the control socket.
    await page.waitForFunction(() =>
      ['conn-stream', 'conn-events', 'conn-control'].every((id) => document.getElementById(id).dataset.state === 'ok'),
    null, { timeout: 10000 });
    await page.waitForFunction(() => document.getElementById('stream').naturalWidth > 0);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'lookout_session');
    assert.ok(session, 'session cookie set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});
