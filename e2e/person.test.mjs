// The person check in the dashboard: a person event gets its badge and the
// detector's box over its thumbnail, and "People only" filters Recent events
// and the gallery. The camera replays real frames of people in a yard
// (testdata/person) after the empty yard, so each loop is a motion episode
// with people in it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, copyFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLookout, api } from './lib/server.mjs';
import { launch, openPage } from './lib/browser.mjs';

const FRAMES = resolve(dirname(fileURLToPath(import.meta.url)), '../testdata/person');

let server;
let browser;
let scene;
let available = false;

before(async () => {
  // 4 s of the empty yard (the background is learnt), then people walking.
  scene = await mkdtemp(join(tmpdir(), 'lookout-e2e-person-'));
  for (let i = 0; i < 16; i++) {
    await copyFile(join(FRAMES, 'empty-yard.jpg'), join(scene, `a${String(i).padStart(2, '0')}.jpg`));
  }
  for (const [i, walk] of ['walk-04', 'walk-20', 'walk-36', 'walk-52'].entries()) {
    await copyFile(join(FRAMES, `${walk}.jpg`), join(scene, `b${i}.jpg`));
  }
  const conf = join(scene, 'lookout.toml');
  await writeFile(conf, '[settings]\ncooldown_s = 1\n');
  server = await startLookout({ source: `file:${scene}?fps=4`, args: ['--config', conf] });
  available = (await api(server, '/status')).person?.available === true;
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (scene) await rm(scene, { recursive: true, force: true });
});

test('a person event has its badge and box, and "People only" filters events and gallery', async (t) => {
  if (!available) {
    t.skip('this build has no person check');
    return;
  }
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await openPage(context);
  try {
    await page.goto(server.url + '/#live');
    // The raw events: the camera view opens on its incidents.
    await page.locator('#show-raw').click();
    const person = page.locator('#events li[data-kind="person"]').first();
    await person.waitFor({ timeout: 90000 });
    await person.locator('.badge-person').waitFor();
    // The box is drawn over the thumbnail, inside it.
    const box = person.locator('.thumb.boxed .person-box');
    await box.waitFor();
    const inside = await box.evaluate((el) => {
      const b = el.getBoundingClientRect();
      const img = el.parentElement.querySelector('img').getBoundingClientRect();
      return b.width > 0 && b.height > 0 && b.left >= img.left - 1 && b.right <= img.right + 1
        && b.top >= img.top - 1 && b.bottom <= img.bottom + 1;
    });
    assert.ok(inside, 'the box lies on the thumbnail');

    // People only: just person events, then all again.
    await page.locator('#events-people-label').waitFor({ state: 'visible' });
    await page.locator('#events-people').check();
    await page.waitForFunction(() => {
      const items = [...document.querySelectorAll('#events li')];
      return items.length > 0 && items.every((li) => li.dataset.kind === 'person');
    });
    await page.locator('#events-people').uncheck();
    await page.waitForFunction(() => [...document.querySelectorAll('#events li')].some((li) => li.dataset.kind !== 'person'));

    // The gallery: person snapshots only.
    await page.goto(server.url + '/#gallery');
    await page.locator('#gallery-list li.snap').first().waitFor({ timeout: 30000 });
    await page.locator('#gallery-people-label').waitFor({ state: 'visible' });
    await page.locator('#gallery-people').check();
    await page.waitForFunction(() => {
      const cards = [...document.querySelectorAll('#gallery-list li.snap')];
      return cards.length > 0 && cards.every((c) => c.dataset.name.startsWith('person-'));
    });
    const { snaps } = await api(server, '/snaps?trigger=person');
    assert.ok(snaps.length > 0 && snaps.every((s) => s.trigger === 'person'));
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});
