// "Recent events": the stored history first, then live events, newest on top.
// Events are kept by id, so the history fetch and the feed's replay may
// overlap without showing anything twice. Deleted snapshots are known by file
// name, not URL: the same file is /snaps/NAME at the root routes and
// /cams/CAM/snaps/NAME under its camera's prefix.

import { $, h, formatTime, formatPercent, formatScore, formatBytes, thumbnail } from './util.js';
import { playClipButton } from './clips.js';

const KEEP = 20;

/** One line of text saying what happened. */
function describe(kind, d) {
  switch (kind) {
    case 'motion':
      // `change` is a score, `area` the share of the picture that changed
      // (absent in events from before it was measured).
      return `motion, score ${formatScore(d.change)}${Number.isFinite(d.area) ? `, ${formatPercent(d.area)} changed` : ''} (trigger ${d.count})`;
    case 'motion_end':
      return `motion ended after ${Number(d.duration_s ?? 0).toFixed(1)} s, peak score ${formatScore(d.peak)}${d.person === false ? ', no person' : ''}`;
    case 'person': {
      const n = Number(d.people ?? 1);
      return `${n > 1 ? `${n} people` : 'a person'} seen, score ${Math.round(Number(d.score ?? 0) * 100)}% (episode ${d.count})`;
    }
    case 'reset':
      return 'counter reset';
    case 'snapshot':
      return `${['motion', 'person'].includes(d.trigger) ? d.trigger : 'manual'} snapshot saved (${formatBytes(d.bytes)})`;
    case 'snapshot_deleted':
      return `snapshot ${d.name} deleted`;
    case 'clip':
      return d.ok === false ? `clip failed: ${d.error || 'unknown error'}` : `clip saved, ${Number(d.duration_s ?? 0).toFixed(1)} s`;
    case 'clip_deleted':
      return `clip ${d.name} deleted`;
    case 'config':
      return `settings changed: threshold ${d.threshold}`;
    case 'snooze':
      return Number.isFinite(d.snoozed_until)
        ? `notifications snoozed until ${formatTime(d.snoozed_until)}`
        : 'notifications back on';
    case 'notify':
      return `notification ${d.status === 'sent' ? 'sent' : d.status === 'merged' ? 'updated' : 'held back (snoozed)'}: ${d.title || d.kind || ''}`;
    case 'source':
      if (d.stream === 'main') {
        return d.up ? 'main stream back: recording and live view' : `main stream lost, not recording${d.error ? `: ${d.error}` : ''}`;
      }
      return d.up ? 'camera online' : `camera offline${d.error ? `: ${d.error}` : ''}`;
    default:
      return kind;
  }
}

/** The file name at the end of a snapshot URL. */
function fileName(url) {
  const last = url.slice(url.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** The snapshot an event points at, if any. */
function snapshotUrl(kind, d) {
  if ((kind === 'motion' || kind === 'person') && typeof d.snapshot === 'string') return d.snapshot;
  if (kind === 'snapshot' && typeof d.url === 'string') return d.url;
  return null;
}

/**
 * The thumbnail of that snapshot: a `snapshot` event names it; a motion
 * event (and history from before thumbnails) has only the picture's URL,
 * whose thumbnail is served at URL/thumb.
 */
function thumbUrl(kind, d, url) {
  if (kind === 'snapshot' && typeof d.thumb === 'string') return d.thumb;
  return `${url}/thumb`;
}

/** Whether an event gets the person badge. */
function aboutPerson(kind, d) {
  return kind === 'person' || (kind === 'motion_end' && d.person === true);
}

/** The detector's box, as a rectangle over the thumbnail (percentages of the picture). */
function personBox(d) {
  const b = d.box;
  if (!Array.isArray(b) || b.length !== 4 || !b.every(Number.isFinite)) return null;
  const pct = (v) => `${(Math.min(1, Math.max(0, v)) * 100).toFixed(2)}%`;
  // Set through the CSSOM: the page's CSP refuses inline style attributes.
  const el = h('span', { class: 'person-box' });
  Object.assign(el.style, { left: pct(b[0]), top: pct(b[1]), width: pct(b[2]), height: pct(b[3]) });
  return el;
}

export class RecentEvents {
  constructor(list = $('events'), empty = $('events-empty')) {
    this.list = list;
    this.empty = empty;
    // "People only": just the person events.
    this.peopleOnly = false;
    this.byId = new Map();
    this.deleted = new Set();
    // Rendered items by id, reused so thumbnails are not fetched again on each event.
    this.items = new Map();
  }

  /**
   * Takes a history page from /api/events (newest first). The page is the
   * truth up to its newest id; events that arrived live after it was read
   * (the feed can be faster than the fetch) are newer and stay.
   */
  load(events) {
    const newest = events.reduce((m, e) => Math.max(m, e.id), -Infinity);
    const live = [...this.byId.values()].filter((e) => e.id > newest);
    this.byId = new Map(events.map((e) => [e.id, e]));
    for (const e of live) this.byId.set(e.id, e);
    this.render();
  }

  /** Shows only person events (`events`: a history page of them), or all again. */
  setPeopleOnly(on) {
    this.peopleOnly = on;
    this.render();
  }

  add(id, kind, data) {
    if (id === null || this.byId.has(id)) return;
    if (this.peopleOnly && kind !== 'person') {
      if (kind === 'snapshot_deleted') this.forget(data.name);
      return;
    }
    // Some events (`snooze`) carry no time of their own: they happen now.
    const ts = Number.isFinite(data.ts) ? data.ts : Date.now() / 1000;
    this.byId.set(id, { id, kind, ts, data });
    if (kind === 'snapshot_deleted') this.forget(data.name);
    this.render();
  }

  render() {
    const shown = [...this.byId.values()].filter((e) => !this.peopleOnly || e.kind === 'person');
    const newest = shown.sort((a, b) => b.id - a.id).slice(0, KEEP);
    // Forget what scrolled off so the map stays small on a busy camera.
    this.byId = new Map(newest.map((e) => [e.id, e]));
    for (const e of newest) {
      if (e.kind === 'snapshot_deleted') this.forget(e.data.name);
    }
    const items = new Map();
    for (const e of newest) items.set(e.id, this.items.get(e.id) || this.item(e));
    this.items = items;
    this.list.replaceChildren(...items.values());
    this.empty.hidden = newest.length > 0;
  }

  /** Marks a snapshot (by file name) as deleted so its thumbnails are drawn again without it. */
  forget(name) {
    if (this.deleted.has(name)) return;
    this.deleted.add(name);
    for (const [id, el] of this.items) {
      if (el.dataset.snapshot && fileName(el.dataset.snapshot) === name) this.items.delete(id);
    }
  }

  item(e) {
    const url = snapshotUrl(e.kind, e.data);
    let thumb = null;
    const box = e.kind === 'person' ? personBox(e.data) : null;
    if (url && !this.deleted.has(fileName(url))) {
      const img = thumbnail(thumbUrl(e.kind, e.data, url), url, { alt: `snapshot of ${e.kind} event`, loading: 'lazy', width: 96, height: 54 });
      thumb = h('a', { href: url, target: '_blank', rel: 'noopener', class: box ? 'thumb boxed' : 'thumb', title: 'open snapshot' },
        img, box);
    } else if (url) {
      thumb = h('span', { class: 'thumb thumb-gone muted small' }, 'deleted');
    }
    return h('li', { class: `event event-${e.kind}`, dataset: { kind: e.kind, id: String(e.id), snapshot: url || '' } },
      h('time', { datetime: new Date(e.ts * 1000).toISOString() }, formatTime(e.ts)),
      h('span', { class: 'kind' }, e.kind.replace('_', ' '),
        aboutPerson(e.kind, e.data) ? h('span', { class: 'badge badge-person', title: 'the person check saw a person' }, 'person') : null),
      h('span', { class: 'detail' }, describe(e.kind, e.data)),
      thumb,
      playClipButton(e.kind, e.data));
  }
}
