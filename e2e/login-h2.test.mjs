// Signing in over HTTPS with HTTP/2, as Chromium does under --tls-self-signed:
// HTTP/2 has no Host header, so the same-site check must use the authority.

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
    args: ['--tls-self-signed', '--require-auth'],
    env: { LOOKOUT_PASSWORD: PASSWORD },
  });
  assert.match(server.url, /^https:/);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a browser signs in over HTTP/2 and gets a working dashboard', async () => {
  // The certificate is self-signed: trust it for this context only.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const page = await openPage(context, server.url + '/');
    assert.match(new URL(page.url()).pathname, /^\/login$/);
    await page.fill('input[name="pass"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(server.url + '/');
    const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    assert.equal(protocol, 'h2');
    // Stream, event feed and control socket (wss) all connect with the cookie.
    await page.waitForFunction(() =>
      ['conn-stream', 'conn-events', 'conn-control'].every((id) => document.getElementById(id)?.dataset.state === 'ok'),
    null, { timeout: 15000 });
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'lookout_session');
    assert.ok(session, 'session cookie set');
    assert.equal(session.secure, true, 'Secure under TLS');
    // Chromium refuses a service worker from a certificate it does not trust
    // (trusting it for this context is not enough) and logs that itself; the
    // page carries on without one, and its Notifications panel says why.
    const refused = 'An SSL certificate error occurred when fetching the script.';
    assert.deepEqual(page.problems.filter((p) => p !== `console: ${refused}`), []);
  } finally {
    await context.close();
  }
});
