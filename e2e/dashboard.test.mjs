// The dashboard against a real lookout with a moving synthetic scene.

import { test, before, after } from 'node:test';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
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

/** Waits until the page has its three connections up. */
async function waitConnected(page) {
  await page.waitForFunction(() =>
    ['conn-stream', 'conn-events', 'conn-control'].every((id) => document.getElementById(id).dataset.state === 'ok'),
  null, { timeout: 10000 });
}

test('page loads with no console errors', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await waitConnected(page);
    // The initial fetches have landed: the counter shows a number.
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById('trigger-count').textContent));
    assert.equal(await page.locator('#threshold').inputValue(), '12');
    assert.equal((await page.locator('#threshold-value').textContent()).trim(), '12');
    // The line under the picture shows the measured rate and this viewer soon
    // after the first frame, well before the 10 s status refresh.
    await page.waitForFunction(() => {
      const t = document.getElementById('source-info').textContent;
      return /\b[1-9]\d* fps/.test(t) && /\b[1-9]\d* viewers?\b/.test(t);
    }, null, { timeout: 8000 });
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('the stream image shows frames that keep changing', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await page.waitForFunction(() => document.getElementById('stream').naturalWidth > 0, null, { timeout: 10000 });
    assert.equal(await page.evaluate(() => document.getElementById('stream').naturalWidth), 640);
    const box = await page.locator('#stream').boundingBox();
    const clip = { x: box.x, y: box.y, width: Math.floor(box.width), height: Math.floor(box.height) };
    const first = await page.screenshot({ clip });
    await until(async () => !first.equals(await page.screenshot({ clip })), { timeout: 5000, interval: 250, what: 'a new frame' });
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('save snapshot shows a toast and the file appears in the gallery', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await waitConnected(page);
    await page.click('#snap-btn');
    const link = page.locator('.toast a', { hasText: 'open' });
    await link.waitFor();
    assert.match(await page.locator('.toast').first().textContent(), /Snapshot saved/);
    const href = await link.getAttribute('href');
    assert.match(href, /^\/snaps\/manual-\d+.*\.jpg$/);
    const name = href.slice('/snaps/'.length);

    const res = await fetch(server.url + href);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');

    await page.click('#tab-gallery');
    const card = page.locator(`#gallery-list li[data-name="${name}"]`);
    await card.waitFor();
    await page.waitForFunction((n) => {
      const img = document.querySelector(`#gallery-list li[data-name="${n}"] img`);
      return img && img.complete && img.naturalWidth > 0;
    }, name);
    // The tile loads the thumbnail (320 px wide), and opens the full picture.
    const img = card.locator('img');
    assert.equal(await img.getAttribute('src'), `/snaps/${name}/thumb`);
    assert.equal(await img.evaluate((el) => el.naturalWidth), 320);
    assert.equal(await card.locator('a.snap-img').getAttribute('href'), href);
    // So does the snapshot's line in "recent events".
    const recent = page.locator(`#events li[data-kind="snapshot"][data-snapshot="${href}"] img`);
    assert.equal(await recent.getAttribute('src'), `/snaps/${name}/thumb`);
    // Live view paused while the gallery shows.
    await page.locator('#conn-stream[data-state="idle"]').waitFor();
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('gallery stays in sync, pages with "older" and deletes with confirmation', async () => {
  const context = await browser.newContext();
  try {
    // Records, from the first instant, whether the gallery ever went from
    // showing cards to showing none: a user would see that as a flash.
    await context.addInitScript(() => {
      window.__galleryFlash = 0;
      document.addEventListener('DOMContentLoaded', () => {
        const list = document.getElementById('gallery-list');
        let had = false;
        new MutationObserver(() => {
          const n = list.children.length;
          if (had && n === 0) window.__galleryFlash++;
          had = n > 0;
        }).observe(list, { childList: true });
      });
    });
    const page = await openPage(context, server.url + '/#gallery');
    await page.waitForFunction(() => document.getElementById('conn-events').dataset.state === 'ok');
    // More snapshots than one page (24), made elsewhere: they arrive as events.
    const names = [];
    for (let i = 0; i < 26; i++) {
      const reply = await api(server, '/control', { method: 'POST', body: { cmd: 'snapshot_now' } });
      assert.equal(reply.ok, true);
      names.push(reply.url.slice('/snaps/'.length));
    }
    const newest = names[names.length - 1];
    await page.locator(`#gallery-list li[data-name="${newest}"]`).waitFor();
    // Newest first.
    assert.equal(await page.locator('#gallery-list li').first().getAttribute('data-name'), newest);

    // A fresh load shows one page and offers older ones.
    await page.reload();
    const total = (await api(server, '/snaps?limit=1000')).snaps.length;
    assert.ok(total > 24);
    await page.locator('#gallery-list li').first().waitFor();
    // The page arrives whole: 24 cards in one step (more only if a motion
    // snapshot arrived live meanwhile).
    assert.ok((await page.locator('#gallery-list li').count()) >= 24);
    // Everything the page fetches at start has landed (the counter shows
    // the config's number), and the list is still whole: it never flashed.
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById('trigger-count').textContent));
    await page.locator('#gallery-more').waitFor();
    assert.ok((await page.locator('#gallery-list li').count()) >= 24);
    assert.equal(await page.evaluate(() => window.__galleryFlash), 0, 'the gallery emptied after showing cards');
    await page.locator('#gallery-more').click();
    await until(async () => (await page.locator('#gallery-list li').count())
      === (await api(server, '/snaps?limit=1000')).snaps.length, { what: 'older page' });
    await page.locator('#gallery-more').waitFor({ state: 'hidden' });

    // Delete: cancel keeps it, confirm removes it (here and on the server).
    const card = page.locator(`#gallery-list li[data-name="${newest}"]`);
    await card.getByRole('button', { name: 'Delete' }).click();
    await page.locator('#confirm').getByRole('button', { name: 'Cancel' }).click();
    await page.locator('#confirm').waitFor({ state: 'hidden' });
    assert.equal(await card.count(), 1);
    await card.getByRole('button', { name: 'Delete' }).click();
    await page.locator('#confirm-ok').click();
    await card.waitFor({ state: 'detached' });
    const left = (await api(server, '/snaps?limit=1000')).snaps.map((s) => s.name);
    assert.ok(!left.includes(newest));

    // A deletion made elsewhere disappears too.
    const other = names[0];
    await api(server, `/snaps/${other}`, { method: 'DELETE' });
    await page.locator(`#gallery-list li[data-name="${other}"]`).waitFor({ state: 'detached', timeout: 3000 });
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('an event stored while the event feed connects still shows', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, null);
    // Hold the event feed back, as a slow network would.
    let release;
    const gate = new Promise((r) => { release = r; });
    await page.route(/\/events$/, async (route) => { await gate; await route.continue(); });
    await page.goto(server.url + '/');
    // The page has read its history and counter (one step at start)...
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById('trigger-count').textContent));
    // ...then an event is stored before the feed subscribes: no replay covers
    // it (a new EventSource has no Last-Event-ID).
    await api(server, '/control', { method: 'POST', body: { cmd: 'reset' } });
    const id = (await api(server, '/api/events?limit=1&kind=reset')).events[0].id;
    release();
    await page.waitForFunction(() => document.getElementById('conn-events').dataset.state === 'ok');
    // In the raw events: the camera view opens on its incidents.
    await page.locator('#show-raw').click();
    await page.locator(`#events li[data-id="${id}"]`).waitFor();
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('moving the slider persists across a reload', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await waitConnected(page);
    await page.waitForFunction(() => document.getElementById('threshold').value === '12');
    // Keyboard: focus the slider and step it up three times.
    await page.focus('#threshold');
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
    await until(async () => (await api(server, '/config')).threshold === 15, { what: 'threshold 15 on the server' });
    // And a jump, as a drag would end.
    await page.locator('#threshold').fill('37');
    await until(async () => (await api(server, '/config')).threshold === 37, { what: 'threshold 37 on the server' });
    assert.equal((await page.locator('#threshold-value').textContent()).trim(), '37');

    await page.reload();
    await page.waitForFunction(() => document.getElementById('threshold').value === '37'
      && document.getElementById('threshold-value').textContent.trim() === '37');
    assert.equal((await api(server, '/config')).threshold, 37);
    assert.deepEqual(page.problems, []);
  } finally {
    await api(server, '/config', { method: 'POST', body: { threshold: 12 } });
    await context.close();
  }
});

test('works at 360 px wide', async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  try {
    const page = await openPage(context, server.url + '/');
    await page.waitForFunction(() => document.getElementById('stream').naturalWidth > 0);
    for (const view of ['live', 'gallery']) {
      if (view === 'gallery') {
        await page.click('#tab-gallery');
        await page.locator('#gallery-list li').first().waitFor();
      }
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 360, `${view}: scrollWidth ${width} > 360`);
    }
    await page.click('#tab-live');
    // The view switches on the hashchange that follows the click.
    for (const id of ['#snap-btn', '#reset-btn', '#threshold']) {
      const el = page.locator(id);
      await el.waitFor({ state: 'visible' });
      const box = await el.boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 360, `${id} inside the viewport: ${JSON.stringify(box)}`);
    }
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('CSP header is sent and the page needs no inline script', async () => {
  for (const path of ['/', '/index.html', '/app.js', '/style.css']) {
    const res = await fetch(server.url + path);
    assert.equal(res.status, 200, path);
    const csp = res.headers.get('content-security-policy');
    assert.ok(csp && csp.includes("default-src 'self'"), `${path}: CSP ${csp}`);
  }
  const context = await browser.newContext();
  try {
    // Recorded from the first instant, before the page's own code runs.
    await context.addInitScript(() => {
      window.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const page = await openPage(context, server.url + '/');
    await waitConnected(page);
    const inline = await page.evaluate(() => {
      const found = [];
      for (const s of document.scripts) {
        if (!s.src || s.textContent.trim()) found.push('inline <script>');
      }
      for (const el of document.querySelectorAll('*')) {
        for (const a of el.attributes) {
          if (a.name.startsWith('on')) found.push(`${el.tagName} ${a.name}`);
        }
      }
      return found;
    });
    assert.deepEqual(inline, []);
    // Exercise the page (toasts, gallery, dialog) and check for violations.
    await page.click('#snap-btn');
    await page.locator('.toast').first().waitFor();
    await page.click('#tab-gallery');
    await page.locator('#gallery-list li').first().waitFor();
    await page.locator('#gallery-list li').first().getByRole('button', { name: 'Delete' }).click();
    await page.locator('#confirm').getByRole('button', { name: 'Cancel' }).click();
    assert.deepEqual(await page.evaluate(() => window.__csp), []);
    assert.deepEqual(page.problems.filter((p) => /Content Security Policy/i.test(p)), []);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

// Screenshots at phone and desktop sizes, kept as test artifacts (e2e/artifacts/,
// not committed) for a person to look at.
test('screenshots at phone and desktop sizes', async () => {
  const dir = fileURLToPath(new URL('./artifacts/', import.meta.url));
  await mkdir(dir, { recursive: true });
  for (const [name, viewport, mobile] of [
    ['phone', { width: 360, height: 740 }, true],
    ['desktop', { width: 1366, height: 900 }, false],
  ]) {
    const context = await browser.newContext({ viewport, isMobile: mobile, hasTouch: mobile });
    try {
      const page = await openPage(context, server.url + '/');
      await waitConnected(page);
      await page.waitForFunction(() => document.getElementById('stream').naturalWidth > 0);
      await page.screenshot({ path: `${dir}dashboard-${name}.png`, fullPage: true });
      assert.deepEqual(page.problems, []);
    } finally {
      await context.close();
    }
  }
});
