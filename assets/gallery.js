// The snapshot gallery: newest first, paged with the server's `next_before`
// cursor, kept in sync with other dashboards by `snapshot` and
// `snapshot_deleted` events.

import { $, h, formatTime, formatBytes, thumbnail } from './util.js';
import { getJSON, del } from './api.js';
import { toast } from './toast.js';

const PAGE = 24;

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

export class Gallery {
  /**
   * `base` is the camera's route prefix ('' for the root routes, else e.g.
   * `/cams/garage`). The page's list belongs to one camera at a time: it
   * starts empty, and destroy() hands it over to the next.
   */
  constructor({ base = '', trigger = '' } = {}) {
    this.base = base;
    // '' for every snapshot, 'person' for "People only".
    this.trigger = trigger;
    this.list = $('gallery-list');
    this.empty = $('gallery-empty');
    this.more = $('gallery-more');
    this.list.replaceChildren();
    this.empty.hidden = true;
    this.more.hidden = true;
    this.more.disabled = false;
    this.closed = false;
    this.cards = new Map(); // name -> <li>
    this.nextBefore = null;
    this.loaded = false;
    this.loading = false;
    // Each reload gets a generation, so an older reload that answers late
    // cannot overwrite a newer one.
    this.generation = 0;
    // While a reload is in flight: what the event feed said meanwhile, to be
    // merged into the fresh page (it may have been read before or after).
    this.pending = null;
    this.listening = new AbortController();
    this.more.addEventListener('click', () => this.loadPage(), { signal: this.listening.signal });
  }

  /** Stops for good: answers still on the way are dropped, the button is let go. */
  destroy() {
    this.closed = true;
    this.generation++;
    this.listening.abort();
  }

  /** Lists only snapshots of `trigger` ('' for all), from the newest. */
  setTrigger(trigger) {
    if (trigger === this.trigger) return;
    this.trigger = trigger;
    // The cards of the other filter must not be kept while the page loads.
    this.cards = new Map();
    this.list.replaceChildren();
    this.nextBefore = null;
    if (this.loaded) this.reload();
  }

  /** The list query: a page size, and the filter. */
  query() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (this.trigger) q.set('trigger', this.trigger);
    return q;
  }

  /** Loads the first page once, when the gallery is first shown. */
  show() {
    if (!this.loaded) this.reload();
  }

  /**
   * Starts over from the newest (also after the event feed had a gap). The
   * cards on show stay until the fresh page is here, then the list is swapped
   * in one step: it never flashes empty, and a card that is still listed keeps
   * its element (its image is not fetched again).
   */
  async reload() {
    const gen = ++this.generation;
    this.loaded = true;
    this.loading = true;
    this.pending = { added: new Map(), removed: new Set() };
    this.refresh();
    let page;
    try {
      page = await getJSON(`${this.base}/snaps?${this.query()}`);
    } catch (e) {
      if (gen === this.generation) toast(`Could not list snapshots: ${e.message}`, { kind: 'error' });
    }
    if (gen !== this.generation) return;
    const { added, removed } = this.pending;
    this.pending = null;
    this.loading = false;
    if (page) {
      const snaps = page.snaps.filter((s) => !removed.has(s.name));
      const listed = new Set(snaps.map((s) => s.name));
      for (const snap of added.values()) {
        if (!listed.has(snap.name) && !removed.has(snap.name)) snaps.push(snap);
      }
      snaps.sort((a, b) => b.ts - a.ts || (a.name < b.name ? 1 : -1));
      const cards = new Map();
      for (const snap of snaps) cards.set(snap.name, this.cards.get(snap.name) || this.card(snap));
      this.cards = cards;
      this.list.replaceChildren(...cards.values());
      this.nextBefore = page.next_before;
    }
    this.refresh();
  }

  /** The next (older) page, below what is shown. */
  async loadPage() {
    if (this.loading) return;
    this.loading = true;
    this.more.disabled = true;
    const gen = this.generation;
    try {
      const q = this.query();
      if (this.nextBefore) q.set('before', this.nextBefore);
      const page = await getJSON(`${this.base}/snaps?${q}`);
      if (gen !== this.generation) return;
      for (const snap of page.snaps) {
        if (!this.cards.has(snap.name)) this.append(snap);
      }
      this.nextBefore = page.next_before;
    } catch (e) {
      if (!this.closed) toast(`Could not list snapshots: ${e.message}`, { kind: 'error' });
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

  append(snap) {
    const card = this.card(snap);
    this.cards.set(snap.name, card);
    this.list.append(card);
  }

  /** A snapshot saved anywhere (this page, another one, motion). */
  added(snap) {
    if (!this.loaded || this.closed) return;
    if (this.trigger && snap.trigger !== this.trigger) return;
    this.pending?.added.set(snap.name, snap);
    if (this.cards.has(snap.name)) return;
    const card = this.card(snap);
    this.cards.set(snap.name, card);
    this.list.prepend(card);
    this.refresh();
  }

  removed(name) {
    if (this.closed) return;
    this.pending?.removed.add(name);
    const card = this.cards.get(name);
    if (!card) return;
    // Keep keyboard focus somewhere sensible when the focused card goes away.
    const hadFocus = card.contains(document.activeElement);
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    this.cards.delete(name);
    if (hadFocus) (next?.querySelector('button') || this.more).focus();
    this.refresh();
  }

  card(snap) {
    const url = snap.url || `${this.base}/snaps/${encodeURIComponent(snap.name)}`;
    // The tile shows the thumbnail; a tap opens the full picture.
    const thumb = snap.thumb || `${url}/thumb`;
    const remove = h('button', { type: 'button', class: 'danger small-btn' }, 'Delete');
    remove.addEventListener('click', () => this.delete(snap.name));
    return h('li', { class: 'snap', dataset: { name: snap.name } },
      h('a', { href: url, target: '_blank', rel: 'noopener', class: 'snap-img' },
        thumbnail(thumb, url, { alt: `${snap.trigger} snapshot ${formatTime(snap.ts)}`, loading: 'lazy', width: 320, height: 180 })),
      h('div', { class: 'snap-meta' },
        h('time', { datetime: new Date(snap.ts * 1000).toISOString() }, formatTime(snap.ts)),
        h('span', { class: 'muted small' }, `${snap.trigger} · ${formatBytes(snap.bytes)}`)),
      h('div', { class: 'snap-actions' },
        h('a', { href: url, target: '_blank', rel: 'noopener', class: 'btn-link' }, 'Open'),
        h('a', { href: url, download: snap.name, class: 'btn-link' }, 'Download'),
        remove));
  }

  async delete(name) {
    if (!(await confirmDelete(`Delete snapshot ${name}? This cannot be undone.`))) return;
    try {
      await del(`${this.base}/snaps/${encodeURIComponent(name)}`);
      toast('Snapshot deleted');
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
