// The overview of several cameras: one live tile each, with its state, trigger
// count and latest motion, kept current by the root event feed (which carries
// every camera's events, each with its `camera`).
//
// Each tile is a link to that camera's full view (#cam/NAME), so it is
// reachable by keyboard and opens in a new tab too. While a camera's view is
// open the overview is hidden: its pictures and its feed are closed then, and
// it reads /cams afresh when it comes back.
//
// Each tile also counts the camera's unseen incidents (unseen.js): those
// newer than the last one its view showed, from /api/incidents and then
// live from the feed's `motion` events; the page title says the sum.

import { $, h, setPill, formatAgo, formatTime } from './util.js';
import { getJSON } from './api.js';
import { EventFeed } from './events.js';
import { LiveStream } from './stream.js';
import { snoozeText } from './snooze.js';
import { lastSeen, setUnseen, formatCount } from './unseen.js';

// A tile needs to show life, not every frame: the server caps each viewer.
const TILE_FPS = 2;
// Over HTTP/1.1 the browser opens at most six connections to one host, and
// each MJPEG picture holds one for good; with the event feed and the page's
// own requests, more than three streams would starve the rest. Further tiles
// show a still that is refreshed instead. HTTP/2 has no such limit.
const STREAM_TILES_H1 = 3;
const STILL_EVERY_MS = 2000;
// "motion 2 min ago" ages by itself.
const AGO_EVERY_MS = 10000;
// Unseen incidents counted per camera at most (then "99+").
const UNSEEN_PAGE = 100;

/** The word a tile shows for a source state from /cams or a `source` event. */
function stateWord(state, up) {
  if (up === true || (up === undefined && state === 'running')) return 'online';
  if (state === 'starting' || state === 'reconnecting') return state;
  return 'offline';
}

/** True when this page came over HTTP/2 (or 3): then streams need not be rationed. */
function multiplexed() {
  const nav = performance.getEntriesByType('navigation')[0];
  return Boolean(nav && /^h[23]/.test(nav.nextHopProtocol || ''));
}

/** A tile picture without a stream: the latest snapshot, fetched again every few seconds. */
class Still {
  constructor(img, url) {
    this.img = img;
    this.url = url;
    this.timer = null;
    this.running = false;
    this.listening = new AbortController();
    // One request at a time: the next starts after this one has answered.
    const next = () => {
      if (this.running) this.timer = setTimeout(() => this.load(), STILL_EVERY_MS);
    };
    img.addEventListener('load', next, { signal: this.listening.signal });
    img.addEventListener('error', next, { signal: this.listening.signal });
  }

  load() {
    const sep = this.url.includes('?') ? '&' : '?';
    this.img.src = `${this.url}${sep}t=${Date.now()}`;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.load();
  }

  pause() {
    this.running = false;
    clearTimeout(this.timer);
  }

  destroy() {
    this.pause();
    this.listening.abort();
    this.img.removeAttribute('src');
  }
}

/** One camera's tile: its elements, its picture and what it shows. */
class Tile {
  constructor(cam, { stream }) {
    this.name = cam.name;
    // No alt text: the link already says which camera, and a camera that is
    // down would show its alt text across the tile.
    this.img = h('img', { class: 'tile-img', alt: '', width: 320, height: 180 });
    this.stateEl = h('span', { class: 'tile-state' });
    this.countEl = h('strong', { class: 'tile-count-n' }, '–');
    this.countUnit = h('span', {}, ' triggers');
    this.motionEl = h('time', { class: 'tile-motion muted small' });
    this.snoozeEl = h('span', { class: 'tile-snooze small', hidden: true });
    this.unseenEl = h('span', { class: 'tile-unseen', hidden: true });
    // Ids of the unseen incidents: the list and the feed may both name one.
    this.unseen = new Set();
    this.link = h('a', { class: 'tile', href: `#cam/${encodeURIComponent(cam.name)}`, dataset: { camera: cam.name } },
      h('span', { class: 'tile-frame' }, this.img, this.stateEl),
      h('span', { class: 'tile-body' },
        h('strong', { class: 'tile-name' }, cam.name),
        this.unseenEl,
        h('span', { class: 'tile-count' }, this.countEl, this.countUnit),
        this.motionEl,
        this.snoozeEl));
    this.el = h('li', { class: 'tile-item' }, this.link);
    this.picture = stream
      ? new LiveStream(this.img, { path: `${cam.stream_url}?fps=${TILE_FPS}` })
      : new Still(this.img, cam.snapshot_url);
    this.lastMotion = null;
    this.snoozedUntil = null;
    this.update(cam);
  }

  /** Takes a fresh entry of /cams. */
  update(cam) {
    this.setState(stateWord(cam.state));
    this.setCount(cam.trigger_count);
    this.setMotion(cam.last_motion_ts);
    if (cam.notify) this.setSnooze(cam.notify.snoozed_until);
  }

  /**
   * Counts `ids` (incidents of this camera) that are newer than the last
   * one seen, with those counted before (a list read and the feed may
   * overlap, in either order) that are still unseen.
   */
  countUnseen(ids) {
    const seen = lastSeen(this.name);
    if (seen !== null) {
      for (const id of this.unseen) if (id <= seen) this.unseen.delete(id);
    }
    for (const id of ids) {
      if (Number.isFinite(id) && (seen === null || id > seen)) this.unseen.add(id);
    }
    const n = this.unseen.size;
    this.unseenEl.hidden = n === 0;
    this.unseenEl.textContent = n === 0 ? '' : `${formatCount(n)} new`;
    this.unseenEl.title = n === 1 ? 'one incident not seen yet' : `${formatCount(n)} incidents not seen yet`;
    this.link.dataset.unseen = String(n);
  }

  /** The camera's notifications are snoozed until then (unix s), or not (null). */
  setSnooze(until) {
    this.snoozedUntil = Number.isFinite(until) ? until : null;
    this.renderSnooze();
  }

  renderSnooze() {
    const text = snoozeText(this.snoozedUntil);
    this.snoozeEl.hidden = text === null;
    this.snoozeEl.textContent = text ?? '';
    this.link.dataset.snoozed = String(text !== null);
  }

  setState(word, detail = '') {
    this.link.dataset.state = word;
    this.stateEl.textContent = word;
    this.stateEl.title = detail;
  }

  setCount(n) {
    if (!Number.isFinite(n)) return;
    this.countEl.textContent = String(n);
    this.countUnit.textContent = n === 1 ? ' trigger' : ' triggers';
  }

  setMotion(ts) {
    this.lastMotion = Number.isFinite(ts) ? ts : null;
    this.renderMotion();
  }

  renderMotion() {
    if (this.lastMotion === null) {
      this.motionEl.textContent = 'no motion yet';
      this.motionEl.removeAttribute('datetime');
      this.motionEl.removeAttribute('title');
      return;
    }
    this.motionEl.textContent = `motion ${formatAgo(this.lastMotion)}`;
    this.motionEl.setAttribute('datetime', new Date(this.lastMotion * 1000).toISOString());
    this.motionEl.title = formatTime(this.lastMotion);
  }

  destroy() {
    this.picture.destroy();
  }
}

export class Overview {
  constructor() {
    this.section = $('overview');
    this.list = $('overview-list');
    this.tiles = new Map(); // name -> Tile
    this.feed = null;
    this.agoTimer = null;
    this.shown = false;
    this.running = false; // pictures playing
    // Each show() gets a generation, so a /cams answer that lands after the
    // person left the overview does not start anything.
    this.generation = 0;
    this.streams = multiplexed() ? Infinity : STREAM_TILES_H1;
  }

  /**
   * Shows the overview. `cameras` (the list the page started with) saves one
   * request the first time; after that /cams is read again, since the feed
   * was closed while the overview was hidden.
   */
  async show(cameras = null) {
    if (this.shown) return;
    this.shown = true;
    this.section.hidden = false;
    const gen = ++this.generation;
    this.startFeed();
    if (cameras) {
      this.render(cameras);
      this.readUnseen(gen);
    } else {
      await this.refresh(gen);
    }
    if (gen !== this.generation) return;
    this.visibility();
    this.agoTimer = setInterval(() => {
      for (const tile of this.tiles.values()) {
        tile.renderMotion();
        // A snooze runs out by itself.
        tile.renderSnooze();
      }
    }, AGO_EVERY_MS);
  }

  /** Hides it and closes every picture and the feed. */
  hide() {
    if (!this.shown) return;
    this.shown = false;
    this.generation++;
    this.section.hidden = true;
    clearInterval(this.agoTimer);
    setUnseen(0);
    this.feed?.close();
    this.feed = null;
    this.visibility();
  }

  /** Pictures run only while the overview is on a visible page. */
  visibility() {
    const want = this.shown && !document.hidden;
    if (want === this.running) return;
    this.running = want;
    for (const tile of this.tiles.values()) {
      if (want) tile.picture.start();
      else tile.picture.pause();
    }
  }

  /**
   * Reads /cams and brings every tile up to date; with `restart`, the
   * pictures start over too (the server may have restarted, and Chrome does
   * not always report the end of a multipart image that showed frames).
   */
  async refresh(gen = this.generation, { restart = false } = {}) {
    let data;
    try {
      data = await getJSON('/cams');
    } catch {
      return; // The feed's pill says the server is away; the tiles keep what they had.
    }
    if (gen !== this.generation || !Array.isArray(data?.cameras)) return;
    this.render(data.cameras);
    this.readUnseen(gen);
    if (restart && this.running) {
      for (const tile of this.tiles.values()) tile.picture.start();
    }
  }

  /** Reads each camera's newest incidents and counts the unseen ones. */
  async readUnseen(gen = this.generation) {
    await Promise.all([...this.tiles.values()].map(async (tile) => {
      let page;
      try {
        page = await getJSON(`/api/incidents?${new URLSearchParams({ camera: tile.name, limit: String(UNSEEN_PAGE) })}`);
      } catch {
        return; // An older server, or away: the tile keeps its count.
      }
      if (gen !== this.generation || !Array.isArray(page?.incidents)) return;
      tile.countUnseen(page.incidents.map((i) => i.id));
    }));
    if (gen === this.generation) this.showUnseen();
  }

  /** The title counts every camera's unseen incidents. */
  showUnseen() {
    let total = 0;
    for (const tile of this.tiles.values()) total += tile.unseen.size;
    setUnseen(total);
  }

  /** Makes the tiles match `cameras` (in their order), keeping the ones that stay. */
  render(cameras) {
    const tiles = new Map();
    cameras.forEach((cam, i) => {
      const old = this.tiles.get(cam.name);
      if (old) {
        old.update(cam);
        tiles.set(cam.name, old);
        return;
      }
      const tile = new Tile(cam, { stream: i < this.streams });
      if (this.running) tile.picture.start();
      tiles.set(cam.name, tile);
    });
    for (const [name, tile] of this.tiles) {
      if (!tiles.has(name)) tile.destroy();
    }
    this.tiles = tiles;
    this.list.replaceChildren(...[...tiles.values()].map((t) => t.el));
  }

  startFeed() {
    const tile = (d) => (typeof d.camera === 'string' ? this.tiles.get(d.camera) : undefined);
    this.feed = new EventFeed('/events', {
      onState: (s) => setPill($('conn-events'), s === 'open' ? 'ok' : 'bad', s === 'open' ? 'connected' : s),
      // Events may have been missed while the feed was away: read the truth again.
      onReopen: () => this.refresh(this.generation, { restart: true }),
      // What /cams said before the feed opened may be a moment old.
      onFirstOpen: () => this.refresh(this.generation),
    });
    this.feed
      .on('motion', (d, id) => {
        const t = tile(d);
        if (!t) return;
        t.setCount(d.count);
        t.setMotion(d.ts);
        // Its SSE id is the incident's.
        if (id !== null) {
          t.countUnseen([id]);
          this.showUnseen();
        }
      })
      .on('motion_end', (d) => tile(d)?.setCount(d.count))
      .on('reset', (d) => tile(d)?.setCount(0))
      .on('config', (d) => tile(d)?.setCount(d.trigger_count))
      .on('snooze', (d) => tile(d)?.setSnooze(d.snoozed_until))
      .on('source', (d) => {
        if (d.stream !== 'main') tile(d)?.setState(stateWord(d.state, d.up), d.up ? '' : d.error || '');
      });
    this.feed.start();
  }
}
