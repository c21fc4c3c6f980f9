// Incidents on the dashboard: one card per motion episode (picture, badge,
// start, duration, zones, clip, notified), the raw events one tap away, and
// the unseen incidents counted on the overview's tile and in the title
// until the camera is opened. The yard replays real frames (testdata/person):
// an empty yard, then people walking, so each loop is one motion episode;
// the gate never moves.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, copyFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLookout, api } from './lib/server.mjs';
import { launch, openPage, until } from './lib/browser.mjs';

const FRAMES = resolve(dirname(fileURLToPath(import.meta.url)), '../testdata/person');

let server;
let browser;
let scene;

before(async () => {
  // 4 s of the empty yard, then 1 s of people walking: an episode every 5 s.
  scene = await mkdtemp(join(tmpdir(), 'lookout-e2e-incidents-'));
  for (let i = 0; i < 16; i++) {
    await copyFile(join(FRAMES, 'empty-yard.jpg'), join(scene, `a${String(i).padStart(2, '0')}.jpg`));
  }
  for (const [i, walk] of ['walk-04', 'walk-20', 'walk-36', 'walk-52'].entries()) {
    await copyFile(join(FRAMES, `${walk}.jpg`), join(scene, `b${i}.jpg`));
  }
  // Every incident is decided at its start: the first one is sent, the next
  // ones within the notification cooldown are merged into it.
  const conf = join(scene, 'lookout.toml');
  await writeFile(conf, [
    '[settings]',
    'cooldown_s = 1',
    // A clip per episode, saved as it ends.
    'clip_pre_s = 0',
    'clip_post_s = 0',
    'notify_on = "motion"',
    'zones = [{ name = "path", points = [[0, 0], [1, 0], [1, 1], [0, 1]] }]',
    '',
  ].join('\n'));
  server = await startLookout({
    cameras: [`yard=file:${scene}?fps=4`, 'gate=synthetic:?size=320x180&fps=5&motion=never'],
    args: ['--config', conf],
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (scene) await rm(scene, { recursive: true, force: true });
});

/** The yard's incidents as the server lists them (newest first). */
async function listed() {
  return (await api(server, '/api/incidents?camera=yard')).incidents;
}

/** The ids of the incident cards on the page, top to bottom. */
function cardIds(page) {
  return page.$$eval('#incidents-list li.incident', (cards) => cards.map((c) => Number(c.dataset.id)));
}

test('one card per incident, with picture, badge, time, duration, zones, clip and notified state', async () => {
  // Two incidents over before the page opens: they come from the list.
  await until(async () => (await listed()).filter((i) => i.duration_s !== null).length >= 2,
    { timeout: 60000, what: 'two finished incidents' });
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  try {
    const page = await openPage(context, `${server.url}/#cam/yard`);
    await page.waitForFunction(() => document.getElementById('conn-events').dataset.state === 'ok');
    // The incidents are the default view; the raw events are not shown.
    assert.equal(await page.locator('#show-incidents').getAttribute('aria-pressed'), 'true');
    await page.locator('#raw-panel').waitFor({ state: 'hidden' });

    // One card per incident the server lists, each once, newest on top.
    const before = await listed();
    await page.waitForFunction((ids) => ids.every((id) => document.querySelector(`#incidents-list li[data-id="${id}"]`)),
      before.map((i) => i.id));
    const ids = await cardIds(page);
    assert.equal(new Set(ids).size, ids.length, `no card twice: ${ids}`);
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
    const listedNow = new Set((await listed()).map((i) => i.id));
    assert.ok(ids.every((id) => listedNow.has(id)), `every card is an incident: ${ids}`);

    // A finished one: its thumbnail (a small picture), a badge, the start,
    // the duration, the zones, its clip and what became of the notification.
    const done = before.find((i) => i.duration_s !== null);
    const card = page.locator(`#incidents-list li[data-id="${done.id}"]`);
    await page.waitForFunction((id) => {
      const img = document.querySelector(`#incidents-list li[data-id="${id}"] img`);
      return img && img.complete && img.naturalWidth > 0;
    }, done.id);
    const width = await card.locator('img').evaluate((img) => img.naturalWidth);
    assert.ok(width > 0 && width <= 320, `a thumbnail, not the full picture: ${width} px`);
    // Listed before the page opened: the incident's own pictures.
    assert.equal(await card.locator('img').getAttribute('src'), `/api/incidents/${done.id}/thumb.jpg?v=${done.kind}`);
    assert.equal(await card.locator('a.incident-thumb').getAttribute('href'), `/api/incidents/${done.id}/picture.jpg?v=${done.kind}`);
    assert.match(await card.locator('.badge').textContent(), /^(person|motion)$/);
    assert.equal(await card.locator('.badge').textContent(), done.kind);
    assert.match(await card.locator('time').textContent(), /\d\d:\d\d:\d\d/);
    assert.equal(await card.locator('.incident-duration').textContent(), `${done.duration_s.toFixed(1)} s`);
    assert.equal(await card.locator('.incident-zones').textContent(), 'zones: path');
    if (done.clip) assert.equal(await card.locator('button.play-clip').isEnabled(), true);
    const tags = { sent: 'notified', snoozed: 'snoozed', merged: 'merged' };
    assert.ok(done.notified in tags, `decided at its start: ${done.notified}`);
    assert.equal(await card.locator('.tag').textContent(), tags[done.notified]);
    // The first incident was sent, the next ones merged into it.
    const oldest = before[before.length - 1];
    assert.equal(oldest.notified, 'sent');
    await page.locator(`#incidents-list li[data-id="${oldest.id}"] .tag`, { hasText: 'notified' }).waitFor();

    // A new incident arrives live: a card on top, under way, then finished,
    // its notification tag, and "Play clip" once the clip is saved.
    const newest = Math.max(...listedNow);
    const live = page.locator('#incidents-list li.incident').first();
    await page.waitForFunction((n) => Number(document.querySelector('#incidents-list li.incident')?.dataset.id) > n,
      newest, { timeout: 30000 });
    const liveId = Number(await live.getAttribute('data-id'));
    const liveCard = page.locator(`#incidents-list li[data-id="${liveId}"]`);
    await liveCard.locator('.tag').waitFor();
    assert.match(await liveCard.locator('.tag').textContent(), /^(notified|merged)$/);
    await liveCard.locator('.incident-duration:not(.under-way)').waitFor({ timeout: 30000 });
    assert.match(await liveCard.locator('.incident-duration').textContent(), /^\d+\.\d s$/);
    // The clip is saved: "Play clip" plays it without waiting.
    await liveCard.locator('button.play-clip[data-pending="false"]:enabled').waitFor({ timeout: 30000 });
    // Its badge says what the server says (person once the check saw one).
    const { kind } = (await listed()).find((i) => i.id === liveId);
    await liveCard.locator('.badge', { hasText: kind }).waitFor();

    // The raw events, one tap away, unchanged; the score is not a percentage.
    await page.locator('#show-raw').click();
    await page.locator('#incidents-panel').waitFor({ state: 'hidden' });
    const motion = page.locator('#events li[data-kind="motion"]').first();
    await motion.waitFor();
    assert.match(await motion.locator('.detail').textContent(), /^motion, score \d+\.\d, \d+\.\d % changed \(trigger \d+\)$/);
    await page.locator('#events li[data-kind="motion_end"]').first().waitFor();
    assert.match(await page.locator('#events li[data-kind="motion_end"] .detail').first().textContent(), /peak score \d+\.\d/);
    await page.locator('#show-incidents').click();
    await page.locator('#raw-panel').waitFor({ state: 'hidden' });
    await liveCard.waitFor();
    // The level above the graph is a score too.
    await page.waitForFunction(() => /^score \d+\.\d/.test(document.getElementById('level-value').textContent));
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('unseen incidents are counted on the tile and in the title until the camera is opened', async () => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  try {
    const page = await openPage(context, `${server.url}/`);
    const yard = page.locator('.tile[data-camera="yard"]');
    // Never opened in this browser: every listed incident is unseen.
    await page.waitForFunction(() => Number(document.querySelector('.tile[data-camera="yard"]')?.dataset.unseen) > 0);
    const n = Number(await yard.getAttribute('data-unseen'));
    assert.equal(await yard.locator('.tile-unseen').textContent(), `${n > 99 ? '99+' : n} new`);
    assert.equal(await page.locator('.tile[data-camera="gate"]').getAttribute('data-unseen'), '0');
    await page.locator('.tile[data-camera="gate"] .tile-unseen').waitFor({ state: 'hidden' });
    await page.waitForFunction(() => /^\(\d+\+?\) lookout$/.test(document.title));

    // New incidents count live, from the feed.
    await page.waitForFunction((k) => Number(document.querySelector('.tile[data-camera="yard"]').dataset.unseen) > k, n,
      { timeout: 30000 }).catch(async (e) => {
      throw new Error(`${e.message}: ${n} then ${await yard.getAttribute('data-unseen')}; listed ${JSON.stringify((await listed()).slice(0, 3))}`);
    });

    // The yard stops moving: what is listed now is all there will be.
    await api(server, '/cams/yard/config', { method: 'POST', body: { threshold: 100 } });
    await until(async () => (await listed())[0]?.duration_s !== null, { timeout: 30000, what: 'the last incident to end' });
    const all = (await api(server, '/api/incidents?camera=yard&limit=100')).incidents;
    const newest = all[0].id;
    // Never opened here: every one of them is unseen (at most the 100 newest are counted).
    await page.waitForFunction((k) => document.querySelector('.tile[data-camera="yard"]').dataset.unseen === String(k)
      && document.title === `(${k > 99 ? '99+' : k}) lookout`, all.length);

    // Opening the yard sees them; back on the overview nothing is new.
    await yard.click();
    await page.locator(`#incidents-list li[data-id="${newest}"]`).waitFor();
    await page.waitForFunction(() => document.title === 'yard · lookout');
    await page.locator('#tab-all').click();
    await page.waitForFunction(() => document.querySelector('.tile[data-camera="yard"]')?.dataset.unseen === '0');
    await yard.locator('.tile-unseen').waitFor({ state: 'hidden' });
    await page.waitForFunction(() => document.title === 'lookout');
    // Remembered across a reload.
    assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('lookout.seenIncidents')).yard), newest);
    const read = page.waitForResponse((r) => r.url().includes('/api/incidents?camera=yard'));
    await page.reload();
    await read;
    // The count is drawn once that answer is read.
    await page.waitForFunction(() => document.querySelector('.tile[data-camera="yard"]')?.dataset.unseen !== undefined);
    assert.equal(await yard.getAttribute('data-unseen'), '0');
    assert.equal(await page.title(), 'lookout');

    // The yard moves again: one more unseen, on the tile and in the title.
    await api(server, '/cams/yard/config', { method: 'POST', body: { threshold: 12 } });
    await page.waitForFunction(() => Number(document.querySelector('.tile[data-camera="yard"]').dataset.unseen) >= 1,
      null, { timeout: 30000 });
    await page.waitForFunction(() => /^\(\d+\) lookout$/.test(document.title));
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});
