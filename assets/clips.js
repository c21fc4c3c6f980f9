// The camera's motion clips, above the snapshots in the gallery view: newest
// first, paged with the server's `next_before` cursor, kept in sync with
// other dashboards by `clip` and `clip_deleted` events. A clip opens in the
// player (player.js).

import { $, h, formatTime, formatBytes } from './util.js';
import { getJSON, del } from './api.js';
import { toast } from './toast.js';
import { player, formatClipTime } from './player.js';

const PAGE = 12;

/** Asks for confirmation in the page's <dialog>; resolves true for "Delete". */
function confirmDelete(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = 'cancel';
    dialog.showModal();
  });
}

/** "12.8 s", or "2:05" from a minute on. */
function formatDuration(s) {
  if (!Number.isFinite(s)) return '';
  if (s < 60) return `${s.toFixed(1)} s`;
  return formatClipTime(s * 1000).replace(/\.\d$/, '');
}

/**
 * The clip an event names, for a "Play clip" button in Recent events:
 * `{url, pending}` or null. A `motion` or `motion_end` event names the clip
 * while it is still being recorded (`pending`: the player waits for it).
 */
export function clipOfEvent(kind, d) {
  if (!d) return null;
  if ((kind === 'motion' || kind === 'motion_end') && typeof d.clip === 'string') return { url: d.clip, pending: true };
  if (kind === 'clip' && d.ok !== false && typeof d.url === 'string') return { url: d.url, pending: false };
  return null;
}

/** The "Play clip" button of an event (clicks are handled by the camera view), or null. */
export function playClipButton(kind, d) {
  const clip = clipOfEvent(kind, d);
  if (!clip) return null;
  return h('button', {
    type: 'button',
    class: 'secondary small-btn play-clip',
    dataset: { clip: clip.url, pending: String(clip.pending) },
  }, 'Play clip');
}

export class Clips {
  /** `base`: the camera's route prefix, as for the gallery. */
  constructor({ base = '' } = {}) {
    this.base = base;
    this.list = $('clips-list');
    this.empty = $('clips-empty');
    this.more = $('clips-more');
    this.list.replaceChildren();
    this.empty.hidden = true;
    this.more.hidden = true;
    this.more.disabled = false;
    this.closed = false;
    this.cards = new Map(); // name -> <li>
    this.nextBefore = null;
    this.loaded = false;
    this.loading = false;
    this.generation = 0;
    this.pending = null;
    this.listening = new AbortController();
    this.more.addEventListener('click', () => this.loadPage(), { signal: this.listening.signal });
  }

  destroy() {
    this.closed = true;
    this.generation++;
    this.listening.abort();
  }

  show() {
    if (!this.loaded) this.reload();
  }

  /** Starts over from the newest, merging what events said meanwhile. */
  async reload() {
    const gen = ++this.generation;
    this.loaded = true;
    this.loading = true;
    this.pending = { added: new Map(), removed: new Set() };
    this.refresh();
    let page;
    try {
      page = await getJSON(`${this.base}/clips?${new URLSearchParams({ limit: String(PAGE) })}`);
    } catch (e) {
      if (gen === this.generation) toast(`Could not list clips: ${e.message}`, { kind: 'error' });
    }
    if (gen !== this.generation) return;
    const { added, removed } = this.pending;
    this.pending = null;
    this.loading = false;
    if (page) {
      const clips = (page.clips || []).filter((c) => !removed.has(c.name));
      const listed = new Set(clips.map((c) => c.name));
      for (const clip of added.values()) {
        if (!listed.has(clip.name) && !removed.has(clip.name)) clips.push(clip);
      }
      clips.sort((a, b) => b.start_ts - a.start_ts || (a.name < b.name ? 1 : -1));
      const cards = new Map();
      for (const clip of clips) cards.set(clip.name, this.cards.get(clip.name) || this.card(clip));
      this.cards = cards;
      this.list.replaceChildren(...cards.values());
      this.nextBefore = page.next_before;
    }
    this.refresh();
  }

  async loadPage() {
    if (this.loading) return;
    this.loading = true;
    this.more.disabled = true;
    const gen = this.generation;
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (this.nextBefore) q.set('before', this.nextBefore);
      const page = await getJSON(`${this.base}/clips?${q}`);
      if (gen !== this.generation) return;
      for (const clip of page.clips || []) {
        if (this.cards.has(clip.name)) continue;
        const card = this.card(clip);
        this.cards.set(clip.name, card);
        this.list.append(card);
      }
      this.nextBefore = page.next_before;
    } catch (e) {
      if (!this.closed) toast(`Could not list clips: ${e.message}`, { kind: 'error' });
    } finally {
      if (!this.closed) {
        if (gen === this.generation) this.loading = false;
        this.more.disabled = false;
        this.refresh();
      }
    }
  }

  refresh() {
    this.more.hidden = !this.nextBefore;
    this.empty.hidden = this.cards.size > 0 || this.loading;
  }

  /** A `clip` event: a clip was saved (or failed, which lists nothing). */
  added(clip) {
    if (!this.loaded || this.closed || clip?.ok === false || !clip?.name) return;
    this.pending?.added.set(clip.name, clip);
    if (this.cards.has(clip.name)) return;
    const card = this.card(clip);
    this.cards.set(clip.name, card);
    this.list.prepend(card);
    this.refresh();
  }

  removed(name) {
    if (this.closed) return;
    this.pending?.removed.add(name);
    const card = this.cards.get(name);
    if (!card) return;
    const hadFocus = card.contains(document.activeElement);
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    this.cards.delete(name);
    if (hadFocus) (next?.querySelector('button') || this.more).focus();
    this.refresh();
  }

  card(clip) {
    const url = clip.url || `${this.base}/clips/${encodeURIComponent(clip.name)}`;
    const thumb = clip.thumb || `${url}/thumb`;
    const when = formatTime(clip.start_ts);
    const title = `Clip ${when} · ${formatDuration(clip.duration_s)}`;
    const open = () => player().open({ url, name: clip.name, title });
    const img = h('img', {
      src: thumb, alt: '', loading: 'lazy', width: 320, height: 180,
      // No thumbnail (yet): the grey box with the play sign stays.
      onerror: () => { img.hidden = true; },
    });
    const poster = h('button', { type: 'button', class: 'clip-poster', 'aria-label': `Play ${title}` },
      img, h('span', { class: 'clip-play', 'aria-hidden': 'true' }, '▶'),
      h('span', { class: 'clip-duration' }, formatDuration(clip.duration_s)));
    poster.addEventListener('click', open);
    const play = h('button', { type: 'button', class: 'small-btn' }, 'Play');
    play.addEventListener('click', open);
    const remove = h('button', { type: 'button', class: 'danger small-btn' }, 'Delete');
    remove.addEventListener('click', () => this.delete(clip.name));
    return h('li', { class: 'clip', dataset: { name: clip.name } },
      poster,
      h('div', { class: 'snap-meta' },
        h('time', { datetime: new Date(clip.start_ts * 1000).toISOString() }, when),
        h('span', { class: 'muted small' }, `${clip.frames} frames · ${formatBytes(clip.bytes)}`)),
      h('div', { class: 'snap-actions' },
        play,
        h('a', { href: url, download: clip.name, class: 'btn-link' }, 'Download'),
        remove));
  }

  async delete(name) {
    if (!(await confirmDelete(`Delete clip ${name}? This cannot be undone.`))) return;
    try {
      await del(`${this.base}/clips/${encodeURIComponent(name)}`);
      toast('Clip deleted');
    } catch (e) {
      if (e.status !== 404) {
        toast(`Could not delete: ${e.message}`, { kind: 'error' });
        return;
      }
      toast('It was already deleted');
    }
    this.removed(name);
  }
}
