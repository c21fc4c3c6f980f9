// Several cameras: the overview of live tiles, and each camera's full view on
// its own routes, with nothing of the previous camera left open.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLookout, api } from './lib/server.mjs';
import { launch, openPage, until } from './lib/browser.mjs';

// Two cameras that differ in everything a test can see: picture size, and
// motion all the time (yard) or never (garage).
const CAMERAS = [
  'yard=synthetic:?size=640x360&fps=15&motion=always',
  'garage=synthetic:?size=320x180&fps=10&motion=never',
];
const WIDTH = { yard: 640, garage: 320 };

let server;
let browser;
// A lookout from before several cameras has no --camera flag: these tests
// then say so and skip, instead of failing on every other line.
let unsupported = null;

before(async () => {
  try {
    server = await startLookout({ cameras: CAMERAS });
  } catch (e) {
    if (!/unexpected argument '--camera'/.test(e.message)) throw e;
    unsupported = 'this lookout has no --camera (one camera only)';
    return;
  }
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const tile = (page, name) => page.locator(`#overview-list a.tile[data-camera="${name}"]`);

/** Waits until both tiles show frames of their own camera. */
async function waitTilesLive(page) {
  await page.waitForFunction((widths) => Object.entries(widths).every(([name, w]) => {
    const img = document.querySelector(`#overview-list a.tile[data-camera="${name}"] img`);
    return img && img.naturalWidth === w;
  }), WIDTH, { timeout: 10000 });
}

/**
 * Records from the first instant every WebSocket and EventSource the page
 * opens and whether it is still open, so a test can see that switching camera
 * closes the old camera's connections.
 */
async function trackConnections(context) {
  await context.addInitScript(() => {
    const open = { ws: new Set(), es: new Set() };
    window.__open = () => ({
      ws: [...open.ws].map((s) => new URL(s.url).pathname),
      es: [...open.es].map((s) => new URL(s.url).pathname),
    });
    const WS = window.WebSocket;
    window.WebSocket = class extends WS {
      constructor(...args) {
        super(...args);
        open.ws.add(this);
        this.addEventListener('close', () => open.ws.delete(this));
      }
    };
    const ES = window.EventSource;
    window.EventSource = class extends ES {
      constructor(...args) {
        super(...args);
        open.es.add(this);
      }
      close() {
        open.es.delete(this);
        super.close();
      }
    };
  });
}

/** Waits until the open sockets and feeds are exactly `ws` and `es` (paths). */
async function waitOpen(page, { ws, es }) {
  const want = JSON.stringify({ ws, es });
  try {
    await page.waitForFunction((w) => JSON.stringify(window.__open()) === w, want, { timeout: 10000 });
  } catch (e) {
    throw new Error(`open connections ${JSON.stringify(await page.evaluate(() => window.__open()))}, want ${want}: ${e.message}`);
  }
}

async function waitConnected(page) {
  await page.waitForFunction(() =>
    ['conn-stream', 'conn-events', 'conn-control'].every((id) => document.getElementById(id).dataset.state === 'ok'),
  null, { timeout: 10000 });
}

test('/cams lists both cameras in order with their routes', async (t) => {
  if (unsupported) return t.skip(unsupported);
  const { cameras } = await api(server, '/cams');
  assert.deepEqual(cameras.map((c) => c.name), ['yard', 'garage']);
  for (const c of cameras) {
    assert.equal(c.base, `/cams/${c.name}`);
    assert.equal(c.stream_url, `/cams/${c.name}/stream.jpg`);
    assert.equal(c.snapshot_url, `/cams/${c.name}/snapshot.jpg`);
  }
});

test('the overview shows a live tile per camera, kept current by the event feed', async (t) => {
  if (unsupported) return t.skip(unsupported);
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await tile(page, 'garage').waitFor();
    assert.deepEqual(await page.locator('#overview-list a.tile').evaluateAll((els) => els.map((e) => e.dataset.camera)),
      ['yard', 'garage']);
    // Not the single-camera page: no live view, no camera tabs.
    assert.equal(await page.locator('#live-view').isHidden(), true);
    assert.equal(await page.locator('#tab-gallery').isHidden(), true);
    await waitTilesLive(page);
    // Each tile's picture is a rate-capped stream of its own camera.
    for (const name of ['yard', 'garage']) {
      const src = await tile(page, name).locator('img').getAttribute('src');
      assert.match(src, new RegExp(`^/cams/${name}/stream\\.jpg\\?fps=\\d+`));
    }
    for (const name of ['yard', 'garage']) {
      await page.locator(`#overview-list a.tile[data-camera="${name}"][data-state="online"]`).waitFor();
    }
    await page.waitForFunction(() => /no motion yet/.test(
      document.querySelector('#overview-list a.tile[data-camera="garage"] .tile-motion').textContent));

    // Motion on the yard reaches its tile live (the page does not poll /cams).
    await api(server, '/cams/yard/config', { method: 'POST', body: { threshold: 1 } });
    await page.waitForFunction(() => {
      const t = document.querySelector('#overview-list a.tile[data-camera="yard"]');
      return Number(t.querySelector('.tile-count-n').textContent) >= 1
        && /^motion (just now|\d+ s ago)$/.test(t.querySelector('.tile-motion').textContent);
    }, null, { timeout: 20000 });
    assert.equal((await tile(page, 'garage').locator('.tile-count-n').textContent()).trim(), '0');

    // A reset of the yard zeroes its tile only. Motion may start a new
    // episode right after, so stop it first.
    await api(server, '/cams/yard/config', { method: 'POST', body: { threshold: 100 } });
    await api(server, '/cams/yard/control', { method: 'POST', body: { cmd: 'reset' } });
    await page.waitForFunction(() => document.querySelector(
      '#overview-list a.tile[data-camera="yard"] .tile-count-n').textContent.trim() === '0', null, { timeout: 5000 });
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('a tile opens that camera, which uses only its own routes; switching closes the old one', async (t) => {
  if (unsupported) return t.skip(unsupported);
  const context = await browser.newContext();
  await trackConnections(context);
  try {
    const page = await openPage(context, server.url + '/');
    await waitTilesLive(page);
    // The overview has the root feed open, nothing else.
    await waitOpen(page, { ws: [], es: ['/events'] });

    await tile(page, 'garage').click();
    await page.waitForFunction(() => location.hash === '#cam/garage');
    await page.waitForFunction(() => document.getElementById('stream').naturalWidth === 320, null, { timeout: 10000 });
    assert.equal(await page.locator('#overview').isHidden(), true);
    assert.equal((await page.locator('#camera-name').textContent()).trim(), 'garage');
    await waitConnected(page);
    await waitOpen(page, { ws: ['/cams/garage/control'], es: ['/cams/garage/events'] });
    // The overview's pictures stopped when it was left.
    assert.deepEqual(await page.locator('#overview-list img').evaluateAll((imgs) => imgs.map((i) => i.getAttribute('src'))),
      [null, null]);

    // "Save snapshot" saves into the garage, not the yard.
    await page.click('#snap-btn');
    const link = page.locator('.toast a', { hasText: 'open' });
    await link.waitFor();
    const href = await link.getAttribute('href');
    assert.match(href, /^\/cams\/garage\/snaps\/manual-\d+.*\.jpg$/);
    const name = href.slice(href.lastIndexOf('/') + 1);
    const res = await fetch(server.url + href);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    await until(async () => (await api(server, '/cams/garage/snaps?limit=1000')).snaps.some((s) => s.name === name),
      { what: 'the snapshot in the garage' });
    assert.ok(!(await api(server, '/cams/yard/snaps?limit=1000')).snaps.some((s) => s.name === name), 'snapshot in the yard');
    assert.ok(!(await api(server, '/snaps?limit=1000')).snaps.some((s) => s.name === name), 'snapshot at the root routes');

    // The garage's gallery lists it, and only garage snapshots.
    await page.click('#tab-gallery');
    await page.waitForFunction(() => location.hash === '#cam/garage/gallery');
    await page.locator(`#gallery-list li[data-name="${name}"]`).waitFor();
    const garage = new Set((await api(server, '/cams/garage/snaps?limit=1000')).snaps.map((s) => s.name));
    const shown = await page.locator('#gallery-list li').evaluateAll((els) => els.map((e) => e.dataset.name));
    assert.deepEqual(shown.filter((n) => !garage.has(n)), []);
    await page.waitForFunction((n) => {
      const img = document.querySelector(`#gallery-list li[data-name="${n}"] img`);
      return img && img.complete && img.naturalWidth === 320;
    }, name);

    // Back to the overview: the garage's socket, feed and stream close.
    await page.getByRole('link', { name: 'All cameras' }).click();
    await page.waitForFunction(() => location.hash === '' || location.hash === '#');
    await waitTilesLive(page);
    await waitOpen(page, { ws: [], es: ['/events'] });
    assert.equal(await page.locator('#stream').getAttribute('src'), null);
    assert.equal(await page.locator('#gallery-view').isHidden(), true);

    // Into the other camera: its own picture, socket and feed.
    await tile(page, 'yard').click();
    await page.waitForFunction(() => location.hash === '#cam/yard');
    await page.waitForFunction(() => document.getElementById('stream').naturalWidth === 640, null, { timeout: 10000 });
    assert.equal((await page.locator('#camera-name').textContent()).trim(), 'yard');
    await waitConnected(page);
    await waitOpen(page, { ws: ['/cams/yard/control'], es: ['/cams/yard/events'] });
    // Its gallery does not show the garage's snapshot.
    await page.click('#tab-gallery');
    await page.waitForFunction(() => location.hash === '#cam/yard/gallery');
    await page.waitForFunction(() => !document.getElementById('gallery-empty').hidden
      || document.querySelectorAll('#gallery-list li').length > 0);
    assert.equal(await page.locator(`#gallery-list li[data-name="${name}"]`).count(), 0);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('a camera link opens directly, and old or wrong links land somewhere sensible', async (t) => {
  if (unsupported) return t.skip(unsupported);
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/#cam/garage');
    await page.waitForFunction(() => document.getElementById('stream').naturalWidth === 320, null, { timeout: 10000 });
    assert.equal(await page.locator('#overview').isHidden(), true);

    // The single-camera bookmark #gallery is the first camera's gallery.
    await page.goto(server.url + '/#gallery');
    await page.waitForFunction(() => location.hash === '#cam/yard/gallery');
    await page.locator('#gallery-view').waitFor();

    // A camera that does not exist: say so, show the overview.
    await page.goto(server.url + '/#cam/nope');
    await page.locator('.toast-error', { hasText: 'nope' }).waitFor();
    await tile(page, 'yard').waitFor();
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('the overview fits a 360 px phone in one column and works by keyboard', async (t) => {
  if (unsupported) return t.skip(unsupported);
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  try {
    const page = await openPage(context, server.url + '/');
    await waitTilesLive(page);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `scrollWidth ${width} > 360`);
    const [a, b] = [await tile(page, 'yard').boundingBox(), await tile(page, 'garage').boundingBox()];
    assert.equal(Math.round(a.x), Math.round(b.x), 'one column');
    assert.ok(b.y >= a.y + a.height, 'garage below yard');
    assert.ok(a.x >= 0 && a.x + a.width <= 360, `tile inside the viewport: ${JSON.stringify(a)}`);

    // Tab reaches the tiles; Enter opens one.
    let focused = null;
    for (let i = 0; i < 20 && focused !== 'garage'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.dataset?.camera ?? null);
    }
    assert.equal(focused, 'garage');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash === '#cam/garage');
    await page.waitForFunction(() => document.getElementById('stream').naturalWidth === 320, null, { timeout: 10000 });
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(w <= 360, `camera view scrollWidth ${w} > 360`);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});
