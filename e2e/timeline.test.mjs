// The day timeline of continuous recording (recordings.js, timeline-bar.js):
// a real lookout records the test RTSP camera in 10 s segments, the bar
// shows them, a click on it plays the recording from that time with the
// time of day under the player, and the "Record continuously" switch turns
// the recording off and on, which the timeline says.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/server.mjs';
import { startRtspLookout } from './lib/rtsp-lookout.mjs';
import { openPage, until } from './lib/browser.mjs';

// A camera and lookout start slowly on a busy machine, and the first
// segment is saved some 10-12 s after the stream comes.
const SLOW = 45000;

let rig;
let server;
let browser;

before(async () => {
  rig = await startRtspLookout('record = "continuous"\nsegment_s = 10\n');
  ({ server, browser } = rig);
});

after(async () => {
  await rig?.stop();
});

/**
 * A fixed-offset time zone in which it is about noon now: the bar is the
 * browser's local day, so the test sees a day boundary other than UTC's,
 * and no segment of the test straddles midnight.
 */
function noonZone() {
  const offset = 12 - new Date().getUTCHours();
  if (offset === 0) return 'Etc/GMT';
  // Etc/GMT-3 is three hours ahead of UTC (POSIX signs).
  return `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`;
}

/** Seconds since the browser's midnight of `ts` (unix s), in the page's zone. */
function secondsOfDay(page, list) {
  return page.evaluate((ts) => ts.map((t) => {
    const d = new Date(t * 1000);
    return d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds();
  }), list);
}

/** What the player shows: the file, the playhead and the time of day under it. */
function playing(page) {
  return page.evaluate(() => {
    const v = document.getElementById('rec-video');
    const text = document.getElementById('rec-clock').textContent;
    const m = /(\d{1,2}):(\d{2}):(\d{2})/.exec(text);
    return {
      path: v.currentSrc ? decodeURIComponent(new URL(v.currentSrc).pathname) : '',
      t: v.currentTime,
      readyState: v.readyState,
      paused: v.paused,
      text,
      segment: document.getElementById('rec-segment').textContent,
      message: document.getElementById('rec-message').textContent,
      secs: m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : null,
    };
  });
}

/** Waits until the video plays: decoded frames, and a playhead that moves on. */
async function waitPlaying(page) {
  await page.waitForFunction(() => {
    const v = document.getElementById('rec-video');
    return v.readyState >= 2 && !v.paused && v.currentTime > 0;
  }, null, { timeout: SLOW });
  const { t } = await playing(page);
  await page.waitForFunction((t0) => document.getElementById('rec-video').currentTime > t0 + 0.5, t, { timeout: SLOW });
}

test('a click on the day bar plays the recording from that time', async () => {
  const context = await browser.newContext({ locale: 'en-GB', timezoneId: noonZone() });
  try {
    const page = await openPage(context, server.url + '/#gallery');
    // The bar has a segment once its summary counts one (today's bar is
    // read again about every segment's length).
    const summary = page.locator('#rec-summary').filter({ hasText: /\(\d+ segments?\)/ });
    await summary.waitFor({ timeout: SLOW });
    assert.match(await page.locator('#rec-state').textContent(), /Recording continuously in 10 s segments/);
    assert.match(await page.locator('#rec-day').textContent(), /^Today, /);
    assert.equal(await page.locator('#rec-next').isDisabled(), true, 'no next day after today');

    // Click the middle of the first segment, where the bar draws it: the
    // browser's local day from left to right.
    const { recordings } = await api(server, '/recordings');
    const first = recordings[0];
    const mid = (first.start_ts + first.end_ts) / 2;
    const geo = await page.evaluate((ts) => {
      const r = document.getElementById('rec-bar').getBoundingClientRect();
      const d = new Date(ts * 1000);
      const from = new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() / 1000;
      const to = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime() / 1000;
      return { left: r.left, top: r.top, width: r.width, from, to };
    }, mid);
    const perPixel = (geo.to - geo.from) / geo.width;
    const x = geo.left + (mid - geo.from) / perPixel;
    await page.mouse.click(x, geo.top + 12);
    const clicked = geo.from + (x - geo.left) * perPixel;

    await waitPlaying(page);
    const shown = await playing(page);
    const { recordings: listed } = await api(server, '/recordings');
    const played = listed.find((r) => r.url === shown.path);
    assert.ok(played, `plays a listed segment (${shown.path})`);
    // A click is a pixel of the day (about a minute here): the segment
    // played holds the time clicked, or lies a few pixels from it.
    const miss = Math.max(0, played.start_ts - clicked, clicked - played.end_ts);
    assert.ok(miss <= 4 * perPixel + 1, `the segment played is where the click was (${miss.toFixed(1)} s off)`);
    // The time of day under the player is inside the segment played.
    const [start, end] = await secondsOfDay(page, [played.start_ts, played.end_ts]);
    assert.ok(shown.secs !== null, `a time of day is shown ("${shown.text}")`);
    assert.ok(shown.secs >= start && shown.secs <= end + 1, `${shown.text} is within the segment (${start}-${end} s of the day): ${JSON.stringify({ shown, played })}`);
    assert.match(await page.locator('#rec-bar').getAttribute('aria-valuetext'), /^playing \d\d:\d\d$/);

    // The keyboard: Home on the bar plays the day's first segment from its start.
    await page.locator('#rec-bar').focus();
    await page.keyboard.press('Home');
    await page.waitForFunction((url) => decodeURIComponent(new URL(document.getElementById('rec-video').currentSrc).pathname) === url, first.url, { timeout: SLOW });
    const fromStart = await playing(page);
    const [firstStart, firstEnd] = await secondsOfDay(page, [first.start_ts, first.end_ts]);
    assert.ok(fromStart.secs >= firstStart && fromStart.secs <= firstEnd + 1, `${fromStart.text} is within the first segment`);
    await waitPlaying(page);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('"Record continuously" turns the recording off and on, and the timeline says so', async () => {
  const context = await browser.newContext({ locale: 'en-GB' });
  try {
    const page = await openPage(context, server.url + '/#live');
    const toggle = page.locator('#record-continuous');
    // The switch shows the camera's setting once its config is read.
    await page.waitForFunction(() => document.getElementById('record-continuous').checked, null, { timeout: SLOW });
    await toggle.uncheck();
    await until(async () => (await api(server, '/config')).record === 'events', { timeout: SLOW, what: 'record = "events"' });

    await page.locator('#tab-gallery').click();
    await page.locator('#rec-state').filter({ hasText: 'Continuous recording is off' }).waitFor({ timeout: SLOW });
    assert.equal(await page.locator('#rec-state').getAttribute('data-kind'), 'off');
    // Nothing recorded is lost: the bar still has the segments saved before.
    await page.locator('#rec-summary').filter({ hasText: /\(\d+ segments?\)/ }).waitFor({ timeout: SLOW });

    await page.locator('#tab-live').click();
    await toggle.check();
    await until(async () => (await api(server, '/config')).record === 'continuous', { timeout: SLOW, what: 'record = "continuous"' });
    await page.locator('#tab-gallery').click();
    await page.locator('#rec-state').filter({ hasText: /^(Recording continuously|Continuous recording is on)/ }).waitFor({ timeout: SLOW });
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});
