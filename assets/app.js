// The dashboard: wires the live view, controls, events and gallery together.
// Each part lives in its own module; this file only connects them.

import { $, setPill, formatPercent } from './util.js';
import { getJSON, postJSON } from './api.js';
import { Control, NotConnected } from './ws.js';
import { EventFeed } from './events.js';
import { LiveStream } from './stream.js';
import { LevelGraph } from './graph.js';
import { RecentEvents } from './recent.js';
import { Gallery } from './gallery.js';
import { toast } from './toast.js';

const STATUS_EVERY_MS = 10000;
// Right after the stream comes up, the camera's frame rate and the viewer
// count are still being measured (the rate needs a second of frames): ask
// again this often until they are live, so the line never shows "0 fps".
const STATUS_SETTLE_MS = 1000;
// A running source with no frame for this long is as good as offline.
const STALE_FRAME_MS = 10000;

const slider = $('threshold');
const sliderValue = $('threshold-value');
const counter = $('trigger-count');
const cameraState = $('camera-state');
const sourceInfo = $('source-info');
const levelValue = $('level-value');

const graph = new LevelGraph($('level-graph'));
const recent = new RecentEvents();
const gallery = new Gallery();
let streamLive = false;
const stream = new LiveStream($('stream'), {
  onState: (s) => {
    setPill($('conn-stream'), s === 'live' ? 'ok' : s === 'paused' ? 'idle' : 'bad', s);
    const wasLive = streamLive;
    streamLive = s === 'live';
    // The first frame is here: show its size, rate and our own viewer now.
    if (streamLive && !wasLive) scheduleStatus(0);
  },
});
const control = new Control('/control', { onState: (s) => setPill($('conn-control'), s === 'open' ? 'ok' : 'bad', s === 'open' ? 'connected' : s) });
const feed = new EventFeed('/events', {
  onState: (s) => setPill($('conn-events'), s === 'open' ? 'ok' : 'bad', s === 'open' ? 'connected' : s),
  // After a gap the server may have restarted: the stream is probably dead too.
  onReopen: () => { stream.restart(); resync({ gallery: true }); },
});

// ---- counter, threshold and camera state -------------------------------

function setCount(n) {
  if (Number.isFinite(n)) counter.textContent = String(n);
}

// Threshold changes sent but not yet answered; while there are any (or a
// finger is on the slider) config updates from the server must not yank the
// slider back to an older value.
let pendingSets = 0;
let sliding = false;

function showThreshold(v) {
  sliderValue.value = String(v);
  sliderValue.textContent = String(v);
  graph.setThreshold(Number(v));
}

function applyConfig(cfg) {
  if (Number.isFinite(cfg.threshold) && pendingSets === 0 && !sliding) {
    slider.value = String(cfg.threshold);
    showThreshold(cfg.threshold);
  }
  setCount(cfg.trigger_count);
}

function setCamera(state, detail = '') {
  cameraState.dataset.state = state;
  const text = {
    online: 'camera online',
    starting: 'camera starting…',
    offline: 'camera offline',
  }[state];
  cameraState.textContent = detail ? `${text}: ${detail}` : text;
}

function applyStatus(st) {
  setCount(st.trigger_count);
  const src = st.source || {};
  if (src.state === 'running') {
    const age = src.last_frame_age_ms;
    if (Number.isFinite(age) && age > STALE_FRAME_MS) setCamera('offline', `no picture for ${Math.round(age / 1000)} s`);
    else setCamera('online');
  } else if (src.state === 'failed' || src.state === 'reconnecting' || (src.state === 'starting' && src.restarts > 0)) {
    setCamera('offline', src.last_error || '');
  } else {
    setCamera('starting');
  }
  const parts = [];
  if (src.width && src.height) parts.push(`${src.width}×${src.height}`);
  if (Number.isFinite(src.fps)) parts.push(`${src.fps.toFixed(0)} fps`);
  if (Number.isFinite(st.viewers)) parts.push(`${st.viewers} viewer${st.viewers === 1 ? '' : 's'}`);
  if (st.version) parts.push(`lookout ${st.version}`);
  sourceInfo.textContent = parts.join(' · ');
}

let statusTimer = null;

/** Reads /status again after `ms` (one pending read at a time). */
function scheduleStatus(ms) {
  clearTimeout(statusTimer);
  statusTimer = setTimeout(refreshStatus, ms);
}

/** True while the live view runs but /status has not measured it yet. */
function settling(st) {
  const src = st.source || {};
  return streamLive && src.state === 'running' && !(src.fps > 0 && st.viewers > 0);
}

async function refreshStatus() {
  let next = STATUS_EVERY_MS;
  try {
    const st = await getJSON('/status');
    applyStatus(st);
    if (settling(st)) next = STATUS_SETTLE_MS;
  } catch {
    // The server is unreachable: the connection pills already say so.
  }
  scheduleStatus(next);
}

/**
 * Refetches everything shown, after a start or (with `gallery`) a gap in the
 * event feed, when snapshot events may have been missed.
 */
async function resync({ gallery: withGallery = false } = {}) {
  const [cfg, status, history] = await Promise.allSettled([
    getJSON('/config'),
    getJSON('/status'),
    getJSON('/api/events?limit=20'),
  ]);
  if (cfg.status === 'fulfilled') applyConfig(cfg.value);
  if (status.status === 'fulfilled') {
    applyStatus(status.value);
    if (settling(status.value)) scheduleStatus(STATUS_SETTLE_MS);
  }
  if (history.status === 'fulfilled') recent.load(history.value.events);
  if (withGallery && gallery.loaded) gallery.reload();
}

// ---- commands ---------------------------------------------------------------

function notConnected() {
  toast('Not connected to the camera: nothing was sent. Try again when "control" is connected.', { kind: 'error' });
}

/** Runs a button's command once at a time; aria-disabled keeps keyboard focus on it. */
function onButton(button, run) {
  button.addEventListener('click', async () => {
    if (button.getAttribute('aria-disabled') === 'true') return;
    button.setAttribute('aria-disabled', 'true');
    try {
      await run();
    } catch (e) {
      if (e instanceof NotConnected) notConnected();
      else toast(e.message, { kind: 'error' });
    } finally {
      button.removeAttribute('aria-disabled');
    }
  });
}

onButton($('snap-btn'), async () => {
  const reply = await control.send({ cmd: 'snapshot_now' });
  if (reply.ok) {
    toast('Snapshot saved', { link: { href: reply.url || `/${reply.saved}`, text: 'open' } });
  } else {
    toast(`Snapshot failed: ${reply.reason || reply.error || 'unknown error'}`, { kind: 'error' });
  }
});

onButton($('reset-btn'), async () => {
  const reply = await control.send({ cmd: 'reset' });
  if (reply.ok) {
    setCount(0);
    toast('Counter reset');
  } else {
    toast(`Reset failed: ${reply.reason || reply.error || 'unknown error'}`, { kind: 'error' });
  }
});

/**
 * Sends the threshold. Setting a value is idempotent, so unlike reset and
 * snapshot it may fall back to POST /config when the socket is down.
 */
async function sendThreshold(value) {
  pendingSets++;
  let reply;
  try {
    reply = control.connected
      ? await control.send({ cmd: 'set', threshold: value })
      : await postJSON('/config', { threshold: value });
  } catch (e) {
    reply = { ok: false, error: e.message };
  } finally {
    pendingSets--;
  }
  if (reply.ok) {
    applyConfig(reply);
  } else {
    toast(`Threshold not saved: ${reply.error || reply.reason || 'unknown error'}`, { kind: 'error' });
    getJSON('/config').then(applyConfig, () => {});
  }
}

slider.addEventListener('pointerdown', () => { sliding = true; });
slider.addEventListener('pointerup', () => { sliding = false; });
slider.addEventListener('pointercancel', () => { sliding = false; });
slider.addEventListener('input', () => showThreshold(slider.value));
slider.addEventListener('change', () => {
  sliding = false;
  sendThreshold(Number(slider.value));
});

// ---- events from the server ------------------------------------------------

feed
  .on('motion', (d, id) => { setCount(d.count); recent.add(id, 'motion', d); })
  .on('motion_end', (d, id) => { setCount(d.count); recent.add(id, 'motion_end', d); })
  .on('reset', (d, id) => { setCount(0); recent.add(id, 'reset', d); })
  .on('snapshot', (d, id) => { gallery.added(d); recent.add(id, 'snapshot', d); })
  .on('snapshot_deleted', (d, id) => { gallery.removed(d.name); recent.add(id, 'snapshot_deleted', d); })
  .on('config', (d, id) => { applyConfig(d); recent.add(id, 'config', d); })
  .on('source', (d, id) => {
    setCamera(d.up ? 'online' : 'offline', d.up ? '' : d.error || '');
    recent.add(id, 'source', d);
  })
  .on('level', (d) => {
    graph.add(d.ts, d.change);
    levelValue.textContent = `${formatPercent(d.change)}${d.active ? ' · motion' : ''}`;
  });

// ---- views: live and gallery ------------------------------------------------

function showView() {
  const gal = location.hash === '#gallery';
  $('live-view').hidden = gal;
  $('gallery-view').hidden = !gal;
  $(gal ? 'tab-gallery' : 'tab-live').setAttribute('aria-current', 'page');
  $(gal ? 'tab-live' : 'tab-gallery').removeAttribute('aria-current');
  if (gal || document.hidden) stream.pause();
  else stream.start();
  if (gal) gallery.show();
}

window.addEventListener('hashchange', showView);
// A stream nobody looks at costs bandwidth and one of the browser's few
// connections to this host: pause it in a background tab.
document.addEventListener('visibilitychange', () => {
  if (document.hidden) stream.pause();
  else if (location.hash !== '#gallery') stream.start();
});

// ---- start ------------------------------------------------------------------

showThreshold(slider.value);
feed.start();
control.connect();
resync();
// The stream starts after the page's load event: an MJPEG image that has no
// frame yet (camera offline) would otherwise hold "load" (and the browser's
// spinner) forever.
if (document.readyState === 'complete') showView();
else window.addEventListener('load', showView, { once: true });
scheduleStatus(STATUS_EVERY_MS);
