// An RTSP camera's clips are MP4 of its own H.264: the dashboard plays them
// in a <video controls> element (not the frame-by-frame MJPEG player).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/server.mjs';
import { startRtspLookout } from './lib/rtsp-lookout.mjs';
import { openPage } from './lib/browser.mjs';

// A camera and lookout start slowly on a busy machine; a clip is capped at 10 s.
const SLOW = 60000;

let rig;
let server;
let browser;

before(async () => {
  rig = await startRtspLookout('threshold = 1\ncooldown_s = 1\nclip_pre_s = 1\nclip_post_s = 1\nclip_max_s = 10\n');
  ({ server, browser } = rig);
});

after(async () => {
  await rig?.stop();
});

test('an MP4 clip plays in a video element', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context);
    await page.goto(server.url + '/#gallery');
    await page.locator('#clips-list li.clip').first().waitFor({ timeout: SLOW });
    const name = await page.locator('#clips-list li.clip').first().getAttribute('data-name');
    assert.match(name, /^motion-\d+\.mp4$/);
    const { clips } = await api(server, '/clips');
    assert.ok(clips.some((c) => c.name === name), `${name} is listed`);

    await page.locator(`#clips-list li.clip[data-name="${name}"] .clip-poster`).click();
    await page.locator('#player').waitFor({ state: 'visible' });
    // The browser decodes it: the video has its size and plays on.
    await page.waitForFunction(() => {
      const v = document.getElementById('player-video');
      return !v.hidden && v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0;
    }, null, { timeout: SLOW });
    assert.equal(await page.locator('#player-img').isHidden(), true, 'no MJPEG picture');
    assert.equal(await page.locator('#player-range').isHidden(), true, 'the video has its own controls');
    assert.equal(await page.locator('#player-video').getAttribute('controls'), '');
    assert.equal(await page.locator('#player-status').textContent(), '');

    await page.locator('#player-close').click();
    await page.locator('#player').waitFor({ state: 'hidden' });
    // Let go when closed (the dialog's close event comes a moment later).
    await page.waitForFunction(() => !document.getElementById('player-video').hasAttribute('src'), null, { timeout: 5000 });
    assert.deepEqual(page.problems ?? [], []);
  } finally {
    await context.close();
  }
});
