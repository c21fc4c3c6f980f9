// A paged live list: one camera's snapshots (gallery.js) or clips
// (clips.js), newest first, paged with the server's `next_before` cursor and
// kept in sync with other dashboards by the event feed (`added`, `removed`).
//
// The page has one list of each kind: a PagedList owns its `<ul>`, its
// "no items" line and its "Older" button while it lives; destroy() hands them
// over to the next camera's list. A kind subclasses it and draws its cards.

import { $ } from './util.js';
import { getJSON, del } from './api.js';
import { toast } from './toast.js';

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

const capitalized = (word) => word.charAt(0).toUpperCase() + word.slice(1);

export class PagedList {
  /**
   * `ids`: the prefix of the page's elements (`<ids>-list`, `-empty`,
   * `-more`); `path`: the list route (`/cams/garage/clips`), whose items are
   * `path/<name>` and come in the answer's `field`; `noun`: one item in
   * messages ('snapshot'); `pageSize`: items per page; `time(item)`: its
   * unix seconds, for the order.
   */
  constructor({ ids, path, field, noun, pageSize, time }) {
    this.path = path;
    this.field = field;
    this.noun = noun;
    this.pageSize = pageSize;
    this.time = time;
    this.list = $(`${ids}-list`);
    this.empty = $(`${ids}-empty`);
    this.more = $(`${ids}-more`);
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

  /** The item's card, an <li>: drawn by the kind. */
  card(_item) {
    throw new Error('PagedList.card: drawn by the kind');
  }

  /** Whether an item from the event feed belongs in this list. */
  accepts(_item) {
    return true;
  }

  /** Query parameters of the kind beside the page's (e.g. a filter). */
  params() {
    return {};
  }

  /** Stops for good: answers still on the way are dropped, the button is let go. */
  destroy() {
    this.closed = true;
    this.generation++;
    this.listening.abort();
  }

  /** Loads the first page once, when the list is first shown. */
  show() {
    if (!this.loaded) this.reload();
  }

  /** Forgets every card (the list's query changed), and starts over if shown. */
  clear() {
    this.cards = new Map();
    this.list.replaceChildren();
    this.nextBefore = null;
    if (this.loaded) this.reload();
  }

  /** The list query: a page size, the kind's parameters, and a cursor. */
  query(before) {
    const q = new URLSearchParams({ limit: String(this.pageSize), ...this.params() });
    if (before) q.set('before', before);
    return q;
  }

  /** One page of items, older than `before` (the newest without). */
  async fetchPage(before) {
    const page = await getJSON(`${this.path}?${this.query(before)}`);
    return { items: page[this.field] || [], nextBefore: page.next_before };
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
      page = await this.fetchPage(null);
    } catch (e) {
      if (gen === this.generation) toast(`Could not list ${this.noun}s: ${e.message}`, { kind: 'error' });
    }
    if (gen !== this.generation) return;
    const { added, removed } = this.pending;
    this.pending = null;
    this.loading = false;
    if (page) {
      const items = page.items.filter((i) => !removed.has(i.name));
      const listed = new Set(items.map((i) => i.name));
      for (const item of added.values()) {
        if (!listed.has(item.name) && !removed.has(item.name)) items.push(item);
      }
      items.sort((a, b) => this.time(b) - this.time(a) || (a.name < b.name ? 1 : -1));
      const cards = new Map();
      for (const item of items) cards.set(item.name, this.cards.get(item.name) || this.card(item));
      this.cards = cards;
      this.list.replaceChildren(...cards.values());
      this.nextBefore = page.nextBefore;
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
      const page = await this.fetchPage(this.nextBefore);
      if (gen !== this.generation) return;
      for (const item of page.items) {
        if (this.cards.has(item.name)) continue;
        const card = this.card(item);
        this.cards.set(item.name, card);
        this.list.append(card);
      }
      this.nextBefore = page.nextBefore;
    } catch (e) {
      if (!this.closed) toast(`Could not list ${this.noun}s: ${e.message}`, { kind: 'error' });
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

  /** An item saved anywhere (this page, another one, the camera itself). */
  added(item) {
    if (!this.loaded || this.closed || !this.accepts(item)) return;
    this.pending?.added.set(item.name, item);
    if (this.cards.has(item.name)) return;
    const card = this.card(item);
    this.cards.set(item.name, card);
    this.list.prepend(card);
    this.refresh();
  }

  /** An item deleted anywhere. */
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

  /** The item's URL when the server gave none (an older server's event). */
  urlOf(item) {
    return item.url || `${this.path}/${encodeURIComponent(item.name)}`;
  }

  /** Deletes an item after asking; every dashboard hears it from the feed. */
  async delete(name) {
    if (!(await confirmDelete(`Delete ${this.noun} ${name}? This cannot be undone.`))) return;
    try {
      await del(`${this.path}/${encodeURIComponent(name)}`);
      toast(`${capitalized(this.noun)} deleted`);
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
