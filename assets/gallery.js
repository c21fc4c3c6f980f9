// The snapshot gallery: newest first, paged with the server's `next_before`
// cursor, kept in sync with other dashboards by `snapshot` and
// `snapshot_deleted` events.

import { $, h, formatTime, formatBytes } from './util.js';
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
  constructor() {
    this.list = $('gallery-list');
    this.empty = $('gallery-empty');
    this.more = $('gallery-more');
    this.cards = new Map(); // name -> <li>
    this.nextBefore = null;
    this.loaded = false;
    this.loading = false;
    this.more.addEventListener('click', () => this.loadPage());
  }

  /** Loads the first page once, when the gallery is first shown. */
  show() {
    if (!this.loaded) this.reload();
  }

  /** Starts over from the newest (also after the event feed had a gap). */
  async reload() {
    this.cards.clear();
    this.list.replaceChildren();
    this.nextBefore = null;
    this.loaded = true;
    await this.loadPage();
  }

  async loadPage() {
    if (this.loading) return;
    this.loading = true;
    this.more.disabled = true;
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (this.nextBefore) q.set('before', this.nextBefore);
      const page = await getJSON(`/snaps?${q}`);
      for (const snap of page.snaps) {
        if (!this.cards.has(snap.name)) this.append(snap);
      }
      this.nextBefore = page.next_before;
    } catch (e) {
      toast(`Could not list snapshots: ${e.message}`, { kind: 'error' });
    } finally {
      this.loading = false;
      this.more.disabled = false;
      this.refresh();
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
    if (!this.loaded || this.cards.has(snap.name)) return;
    const card = this.card(snap);
    this.cards.set(snap.name, card);
    this.list.prepend(card);
    this.refresh();
  }

  removed(name) {
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
    const url = snap.url || `/snaps/${encodeURIComponent(snap.name)}`;
    const remove = h('button', { type: 'button', class: 'danger small-btn' }, 'Delete');
    remove.addEventListener('click', () => this.delete(snap.name));
    return h('li', { class: 'snap', dataset: { name: snap.name } },
      h('a', { href: url, target: '_blank', rel: 'noopener', class: 'snap-img' },
        h('img', { src: url, alt: `${snap.trigger} snapshot ${formatTime(snap.ts)}`, loading: 'lazy', width: 320, height: 180 })),
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
      await del(`/snaps/${encodeURIComponent(name)}`);
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
