// The live view of an RTSP camera: its own H.264 through Media Source
// Extensions (live.mp4), the quality switch, and MJPEG where the browser
// cannot play the codec or the camera sends no video stream.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLookout, api } from './lib/server.mjs';
import { startCamera } from './lib/rtsp.mjs';
import { launch, openPage, until } from './lib/browser.mjs';

// A camera and lookout start slowly on a busy machine.
const SLOW = 45000;
// Seconds of playback the first test watches (scripts/bench --live asks
// for 60, and prints the delay figures).
const WATCH_S = Number(process.env.LOOKOUT_LIVE_SECONDS) || 10;

let camera;
let server;
let browser;

before(async () => {
  camera = await startCamera();
  server = await startLookout({ source: camera.main, args: ['--detect-source', camera.sub] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await camera?.stop();
});

/** The video's playhead and how much it holds before and after it. */
function videoState(page) {
  return page.evaluate(() => {
    const v = document.getElementById('live-video');
    const b = v.buffered;
    return {
      readyState: v.readyState,
      t: v.currentTime,
      start: b.length ? b.start(0) : null,
      end: b.length ? b.end(b.length - 1) : null,
      width: v.videoWidth,
      height: v.videoHeight,
    };
  });
}

/** Waits until the video plays (enough data for the playhead to move). */
async function waitPlaying(page) {
  await page.waitForFunction(() => {
    const v = document.getElementById('live-video');
    return !v.hidden && v.readyState >= 3 && !v.paused;
  }, null, { timeout: SLOW });
}

test('H.264 plays live in the video, with little buffer behind the playhead', async (t) => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await waitPlaying(page);
    assert.equal(await page.locator('#stream').isHidden(), true, 'the MJPEG image gives way to the video');
    assert.equal(await page.locator('#quality').isVisible(), true);
    assert.equal(await page.locator('#quality [data-quality="main"]').getAttribute('aria-pressed'), 'true');
    await page.locator('#conn-stream[data-state="ok"]').waitFor({ timeout: SLOW });

    // Over ten seconds of playing, the playhead advances and the buffer
    // behind it stays short (the camera sends a keyframe every 2 s; MSE
    // can only drop whole keyframe intervals), and playback stays near the
    // newest frame.
    const first = await videoState(page);
    let samples = 0;
    let maxBehind = 0;
    let maxAhead = 0;
    // How far behind lookout the picture on screen is (ms): now minus when
    // lookout had the frame at the playhead, from the stream's prft boxes.
    const delays = [];
    await until(async () => {
      const s = await videoState(page);
      assert.ok(s.start !== null, 'something is buffered');
      maxBehind = Math.max(maxBehind, s.t - s.start);
      maxAhead = Math.max(maxAhead, s.end - s.t);
      samples++;
      const d = Number(await page.locator('#live-info').getAttribute('data-delay-ms'));
      if (Number.isFinite(d) && d > 0) delays.push(d);
      return s.t >= first.t + WATCH_S;
    }, { timeout: SLOW + WATCH_S * 2000, interval: 200, what: `${WATCH_S} s of playback` });
    assert.ok(samples > 10, `sampled ${samples} times`);
    assert.ok(maxBehind < 2.6, `buffer behind the playhead reached ${maxBehind.toFixed(2)} s`);
    assert.ok(maxAhead < 3, `playback fell ${maxAhead.toFixed(2)} s behind the newest frame`);
    // The delay is known (the stream's prft boxes reach the player); how
    // long it is is a figure for the bench (scripts/bench --live), not a
    // pass mark for a test on a busy machine.
    assert.ok(delays.length >= 5, `delay known in ${delays.length} samples`);
    delays.sort((a, b) => a - b);
    const p95 = delays[Math.min(delays.length - 1, Math.floor(delays.length * 0.95))];
    t.diagnostic(`picture behind lookout: median ${delays[Math.floor(delays.length / 2)]} ms, p95 ${p95} ms, of ${delays.length} samples`);

    // Size, measured bitrate and codec beside the switch.
    await page.waitForFunction(() => /^1280x720 · [\d.]+ [kM]bit\/s · H\.264( · [\d.]+ s behind)?$/.test(document.getElementById('live-info').textContent), null, { timeout: SLOW });
    const s = await videoState(page);
    assert.deepEqual([s.width, s.height], [1280, 720]);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('Substream plays the detect stream, and the choice is kept across a reload', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await waitPlaying(page);
    const sub = page.locator('#quality [data-quality="sub"]');
    await sub.click({ timeout: SLOW });
    await page.waitForFunction(() => document.getElementById('live-video').videoWidth === 640, null, { timeout: SLOW });
    await waitPlaying(page);
    assert.equal(await sub.getAttribute('aria-pressed'), 'true');
    await page.waitForFunction(() => /^640x360 · /.test(document.getElementById('live-info').textContent), null, { timeout: SLOW });

    await page.reload();
    await waitPlaying(page);
    await page.waitForFunction(() => document.getElementById('live-video').videoWidth === 640, null, { timeout: SLOW });
    assert.equal(await page.locator('#quality [data-quality="sub"]').getAttribute('aria-pressed'), 'true');

    // MJPEG: the image is back with frames, the video gone.
    await page.click('#quality [data-quality="mjpeg"]');
    await page.waitForFunction(() => {
      const img = document.getElementById('stream');
      return !img.hidden && img.naturalWidth > 0;
    }, null, { timeout: SLOW });
    assert.equal(await page.locator('#live-video').isHidden(), true);
    assert.equal(await page.locator('#live-note').isHidden(), true, 'a choice needs no excuse');
    await page.reload();
    await page.waitForFunction(() => document.getElementById('stream').naturalWidth > 0, null, { timeout: SLOW });
    assert.equal(await page.locator('#quality [data-quality="mjpeg"]').getAttribute('aria-pressed'), 'true');
    assert.equal(await page.locator('#live-video').isHidden(), true);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('an H.265 camera plays in the video only where the browser can, else MJPEG with the reason', async (t) => {
  const cam = await startCamera({ args: ['--codec', 'h265'] });
  t.after(() => cam.stop());
  const h265 = await startLookout({ source: cam.main, args: ['--detect-source', cam.sub] });
  t.after(() => h265.stop());
  const context = await browser.newContext();
  t.after(() => context.close());

  // The codec, once the server has the stream's parameters.
  const codec = await until(async () => (await api(h265, '/cams')).cameras[0].live_codecs?.main, { timeout: SLOW, what: 'the main codec' });
  assert.match(codec, /^(hvc1|hev1)\./);
  const page = await openPage(context, h265.url + '/');
  const mime = `video/mp4; codecs="${codec}"`;
  const supported = await page.evaluate((m) => (window.ManagedMediaSource || window.MediaSource).isTypeSupported(m), mime);
  t.diagnostic(`this browser ${supported ? 'plays' : 'does not play'} ${mime}`);
  if (supported) {
    await waitPlaying(page);
    await page.waitForFunction(() => /· H\.265( · [\d.]+ s behind)?$/.test(document.getElementById('live-info').textContent), null, { timeout: SLOW });
  } else {
    await page.waitForFunction(() => {
      const img = document.getElementById('stream');
      return !img.hidden && img.naturalWidth > 0;
    }, null, { timeout: SLOW });
    assert.equal(await page.locator('#live-video').isHidden(), true);
    const note = page.locator('#live-note');
    assert.equal(await note.isVisible(), true);
    assert.match(await note.textContent(), /^Showing MJPEG: this browser cannot play H\.265\.$/);
    const main = page.locator('#quality [data-quality="main"]');
    assert.equal(await main.isDisabled(), true);
    assert.equal(await page.locator('#quality [data-quality="mjpeg"]').getAttribute('aria-pressed'), 'true');
  }
  assert.deepEqual(page.problems, []);
});

test('a camera without a video stream shows MJPEG, with no quality switch', async (t) => {
  const synthetic = await startLookout({ source: 'synthetic:?size=320x180&fps=10' });
  t.after(() => synthetic.stop());
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await openPage(context, synthetic.url + '/');
  await page.waitForFunction(() => document.getElementById('stream').naturalWidth === 320, null, { timeout: SLOW });
  assert.equal(await page.locator('#live-video').isHidden(), true);
  assert.equal(await page.locator('#quality').isHidden(), true);
  assert.equal(await page.locator('#live-note').isHidden(), true);
  assert.equal(await page.locator('#live-info').textContent(), '');
  assert.equal((await api(synthetic, '/cams')).cameras[0].live_url, undefined);
  // The server agrees: this camera has no video to give.
  const res = await fetch(synthetic.url + '/live.mp4');
  assert.equal(res.status, 404);
  assert.deepEqual(page.problems, []);
});
