// Debian's chromium driven by playwright-core (no browser download here).

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** The browser; `args` adds command-line switches. */
export function launch({ args = [] } = {}) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...ARGS, ...args] });
}

/**
 * A browser context with a profile in `dir`, not an incognito one: what
 * Chrome refuses in incognito (installing an app, Web Push) needs it.
 * Closing the context closes its browser.
 */
export function launchPersistent(dir) {
  return chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ARGS });
}

/**
 * A new page that records console errors and uncaught exceptions in
 * `page.problems`, so a test can assert there were none.
 */
export async function openPage(context, url) {
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // While the camera has no frame the stream answers 503 and the page
    // retries (so does the video stream, live.mp4): the browser logs each
    // attempt, which is expected, not a fault.
    const url = msg.location()?.url || '';
    if ((url.includes('/stream.jpg') || url.includes('/live.mp4')) && msg.text().includes('503')) return;
    page.problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
  page.setDefaultTimeout(15000);
  if (url) await page.goto(url);
  return page;
}

/** Polls `fn` (async, in node) until it returns truthy or the deadline passes. */
export async function until(fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}
