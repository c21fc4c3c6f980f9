// Motion clips in the dashboard: the list in the gallery view, the player
// (frames by Range from the clip's index), and "Play clip" in Recent events.
// The scene moves all the time and clips are capped at 10 s, so one clip is
// saved about 10 s after the start (motion never ends, so no second one).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLookout, api } from './lib/server.mjs';
import { launch, openPage } from './lib/browser.mjs';

let server;
let browser;
let confDir;

before(async () => {
  // Settings from the start (a /config POST could come after the episode
  // began, with the default 120 s cap already taken).
  confDir = await mkdtemp(join(tmpdir(), 'lookout-e2e-conf-'));
  const conf = join(confDir, 'lookout.toml');
  await writeFile(conf, '[settings]\nthreshold = 1\ncooldown_s = 1\nclip_pre_s = 1\nclip_post_s = 1\nclip_max_s = 10\n');
  server = await startLookout({ source: 'synthetic:?size=640x360&fps=10&motion=always', args: ['--config', conf] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (confDir) await rm(confDir, { recursive: true, force: true });
});

/** A phone-sized page that counts object URLs made and let go. */
async function phonePage() {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  await context.addInitScript(() => {
    const create = URL.createObjectURL.bind(URL);
    const revoke = URL.revokeObjectURL.bind(URL);
    const live = new Set();
    window.__objectUrls = live;
    URL.createObjectURL = (o) => { const u = create(o); live.add(u); return u; };
    URL.revokeObjectURL = (u) => { live.delete(u); revoke(u); };
  });
  const page = await openPage(context);
  // Clip thumbnails may not be served yet (404): the list copes (no image),
  // but the browser logs each one; that is not a fault of the page.
  // A test adds to `expected404` what else may answer 404 by design.
  page.expected404 = [/\/clips\/[^/]+\/thumb$/];
  page.thumbMisses = [];
  page.on('console', (msg) => {
    const url = msg.location()?.url || '';
    if (msg.type() === 'error' && msg.text().includes('404') && page.expected404.some((re) => re.test(url))) {
      page.thumbMisses.push(`console: ${msg.text()}`);
    }
  });
  return { context, page };
}

/** page.problems without the thumbnail 404s. */
function problems(page) {
  const left = [...page.problems];
  for (const miss of page.thumbMisses) {
    const i = left.indexOf(miss);
    if (i >= 0) left.splice(i, 1);
  }
  return left;
}

/** The frame number the player shows ("frame 12 / 100" -> 12), or -1. */
const frameNo = () => {
  const m = /frame (\d+) \/ (\d+)/.exec(document.getElementById('player-frame')?.textContent || '');
  return m ? Number(m[1]) : -1;
};

/**
 * Waits until the frame number compares to `n` by `op` ('>=', '>', '==='),
 * and returns it. (A function, not a string: the page's CSP has no eval.)
 */
async function waitFrame(page, op, n, timeout = 15000) {
  const handle = await page.waitForFunction(([op, n]) => {
    const m = /frame (\d+) \/ (\d+)/.exec(document.getElementById('player-frame')?.textContent || '');
    const f = m ? Number(m[1]) : -1;
    const ok = op === '>=' ? f >= n : op === '>' ? f > n : f === n;
    return ok ? f : false;
  }, [op, n], { timeout });
  return handle.jsonValue();
}

/** Fails if the counter moves within `ms` (paused means paused). */
async function staysAt(page, n, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    assert.equal(await page.evaluate(frameNo), n, 'the frame moved while paused');
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('"Play clip" on a motion event waits for the clip still being recorded', async (t) => {
  const { context, page } = await phonePage();
  // The clip's index is not served until the clip is saved.
  page.expected404.push(/\/clips\/[^/]+\/index$/);
  try {
    await page.goto(server.url + '/#live');
    // The raw events: the camera view opens on its incidents.
    await page.locator('#show-raw').click();
    const button = page.locator('#events li[data-kind="motion"] button.play-clip').first();
    await button.waitFor({ timeout: 30000 });
    await button.click();
    await page.locator('#player').waitFor({ state: 'visible' });
    // Usually the clip is still recording (it is capped at 10 s); on a slow
    // machine it may be saved already. Either way it plays once saved.
    const first = await (await page.waitForFunction(() => {
      if (/still recording/.test(document.getElementById('player-status').textContent)) return 'recording';
      return /frame [1-9]/.test(document.getElementById('player-frame').textContent) ? 'playing' : false;
    }, null, { timeout: 20000 })).jsonValue();
    t.diagnostic(`the clip was ${first === 'recording' ? 'still recording' : 'saved already'} when opened`);
    await waitFrame(page, '>=', 3, 40000);
    assert.equal(await page.locator('#player-status').textContent(), '');
    await page.locator('#player-close').click();
    await page.locator('#player').waitFor({ state: 'hidden' });
    assert.deepEqual(problems(page), []);
  } finally {
    await context.close();
  }
});

test('a clip shows in the list and plays, pauses, scrubs, steps and downloads', async () => {
  const { context, page } = await phonePage();
  try {
    await page.goto(server.url + '/#gallery');
    await page.locator('#clips-list li.clip').first().waitFor({ timeout: 60000 });
    // The scene may start a new episode (and clip) at any time: from here on
    // this one clip, by name.
    const name = await page.locator('#clips-list li.clip').first().getAttribute('data-name');
    const card = page.locator(`#clips-list li.clip[data-name="${name}"]`);
    const { clips } = await api(server, '/clips');
    const clip = clips.find((c) => c.name === name);
    assert.ok(clip, `${name} is listed`);
    assert.match(await card.locator('time').textContent(), /\d/);

    await card.locator('.clip-poster').click();
    const dialog = page.locator('#player');
    await dialog.waitFor({ state: 'visible' });
    // Fits a 360 px wide screen.
    const box = await dialog.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 360, `dialog at ${box.x}+${box.width}`);

    // It plays by itself: the counter advances.
    await page.waitForFunction(() => /frame [1-9]\d* \/ [1-9]/.test(document.getElementById('player-frame').textContent));
    const total = Number(/\/ (\d+)/.exec(await page.locator('#player-frame').textContent())[1]);
    assert.equal(total, clip.frames);
    await waitFrame(page, '>=', 4, 20000);
    // A new frame's blob is set before the browser has decoded it: read the
    // picture once one is decoded, in the same step (the next frame may come).
    const decoded = await page.waitForFunction(() => {
      const el = document.getElementById('player-img');
      return el.complete && el.naturalWidth > 0 ? { src: el.src, w: el.naturalWidth } : null;
    });
    const img = await decoded.jsonValue();
    assert.match(img.src, /^blob:/);
    assert.equal(img.w, 640);

    // Pause: the counter stays.
    await page.locator('#player-play').click();
    await page.waitForFunction(() => document.getElementById('player-play').textContent === 'Play');
    const paused = await page.evaluate(frameNo);
    await staysAt(page, paused, 1000);

    // Scrub to the middle: the time label and counter follow.
    const timeBefore = await page.locator('#player-time').textContent();
    let mid = Math.floor((total - 1) / 2);
    if (mid + 1 === paused) mid += 1;
    await page.locator('#player-range').evaluate((el, v) => {
      el.value = String(v);
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    }, mid);
    await waitFrame(page, '===', mid + 1);
    const timeMid = await page.locator('#player-time').textContent();
    assert.notEqual(timeMid, timeBefore);
    assert.match(timeMid, /^\d+:\d\d\.\d \/ \d+:\d\d\.\d$/);
    assert.equal(await page.locator('#player-play').textContent(), 'Play');

    // One frame forward (button), then back (arrow key).
    await page.locator('#player-next').click();
    await waitFrame(page, '===', mid + 2);
    await page.keyboard.press('ArrowLeft');
    await waitFrame(page, '===', mid + 1);

    // ×4, play: it runs to the end and stops there.
    await page.locator('.player-speed[data-speed="4"]').click();
    assert.equal(await page.locator('.player-speed[data-speed="4"]').getAttribute('aria-pressed'), 'true');
    assert.equal(await page.locator('.player-speed[data-speed="1"]').getAttribute('aria-pressed'), 'false');
    await page.locator('#player-play').click();
    await waitFrame(page, '>', mid + 1);
    await waitFrame(page, '===', total, 30000);
    await page.waitForFunction(() => document.getElementById('player-play').textContent === 'Play');

    // Download: the clip's own URL, served as Matroska.
    const href = await page.locator('#player-download').getAttribute('href');
    assert.equal(href, clip.url);
    assert.equal(await page.locator('#player-download').getAttribute('download'), clip.name);
    const res = await fetch(server.url + href);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'video/x-matroska');
    await res.arrayBuffer();

    // Close: nothing is left playing and every object URL is let go.
    await page.locator('#player-close').click();
    await dialog.waitFor({ state: 'hidden' });
    await page.waitForFunction(() => window.__objectUrls.size === 0);
    assert.deepEqual(problems(page), []);
  } finally {
    await context.close();
  }
});

test('"Play clip" in Recent events opens the player', async () => {
  const { context, page } = await phonePage();
  try {
    await page.goto(server.url + '/#live');
    // The raw events: the camera view opens on its incidents.
    await page.locator('#show-raw').click();
    // The `clip` event (stored history, or live when this test runs first).
    const button = page.locator('#events li[data-kind="clip"] button.play-clip').first();
    await button.waitFor({ timeout: 60000 });
    await button.click();
    await page.locator('#player').waitFor({ state: 'visible' });
    await waitFrame(page, '>=', 2, 20000);
    await page.keyboard.press('Escape');
    await page.locator('#player').waitFor({ state: 'hidden' });
    await page.waitForFunction(() => window.__objectUrls.size === 0);
    assert.deepEqual(problems(page), []);
  } finally {
    await context.close();
  }
});

test('deleting a clip takes it off the list in every open dashboard', async () => {
  const a = await phonePage();
  const b = await phonePage();
  try {
    await a.page.goto(server.url + '/#gallery');
    await b.page.goto(server.url + '/#gallery');
    await a.page.locator('#clips-list li.clip').first().waitFor({ timeout: 60000 });
    const name = await a.page.locator('#clips-list li.clip').first().getAttribute('data-name');
    const card = a.page.locator(`#clips-list li.clip[data-name="${name}"]`);
    const other = b.page.locator(`#clips-list li.clip[data-name="${name}"]`);
    await other.waitFor();
    await card.getByRole('button', { name: 'Delete' }).click();
    await a.page.locator('#confirm-ok').click();
    await a.page.locator('.toast', { hasText: 'Clip deleted' }).waitFor();
    await card.waitFor({ state: 'detached' });
    // The other dashboard hears it through clip_deleted.
    await other.waitFor({ state: 'detached' });
    const { clips } = await api(server, '/clips');
    assert.ok(!clips.some((c) => c.name === name));
    assert.deepEqual(problems(a.page), []);
    assert.deepEqual(problems(b.page), []);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});
