// The server's event feed (/events, Server-Sent Events).
//
// EventSource reconnects by itself after a dropped connection and sends
// Last-Event-ID, so the server replays what was missed. It gives up for good
// when a reconnect gets an HTTP error (e.g. a proxy's 502 while lookout
// restarts); then we build a new one with backoff and ask the page to resync,
// since a fresh EventSource has no Last-Event-ID to replay from.

import { Backoff } from './util.js';

export const KINDS = ['motion', 'motion_end', 'person', 'reset', 'snapshot', 'snapshot_deleted', 'clip', 'clip_deleted', 'config', 'source', 'level', 'snooze', 'notify'];

export class EventFeed {
  /**
   * `onState(state)`: 'connecting' | 'open' | 'closed'.
   * `onReopen()`: called when the feed is back after a gap; the page should
   * refetch what it shows, as events may have been missed.
   * `onFirstOpen()`: called when the feed first opens. What the page read
   * before that (history, counters) may miss an event stored between that
   * read and this subscription, which no replay covers (a new EventSource has
   * no Last-Event-ID): read it again now; from here on the feed has it all.
   */
  constructor(url = '/events', { onState = () => {}, onReopen = () => {}, onFirstOpen = () => {} } = {}) {
    this.url = url;
    this.onState = onState;
    this.onReopen = onReopen;
    this.onFirstOpen = onFirstOpen;
    this.handlers = new Map();
    this.backoff = new Backoff(1000, 15000);
    this.source = null;
    this.everOpened = false;
    this.closed = false;
    this.retryTimer = null;
  }

  /** `fn(data, id)` for each event of `kind`; `id` is a number or null. */
  on(kind, fn) {
    if (!this.handlers.has(kind)) this.handlers.set(kind, []);
    this.handlers.get(kind).push(fn);
    return this;
  }

  start() {
    if (this.closed) return;
    this.onState('connecting');
    const es = new EventSource(this.url);
    this.source = es;
    es.addEventListener('open', () => {
      if (this.source !== es) return;
      this.backoff.reset();
      this.onState('open');
      if (this.everOpened) this.onReopen();
      else this.onFirstOpen();
      this.everOpened = true;
    });
    es.addEventListener('error', () => {
      if (this.source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        this.onState('closed');
        es.close();
        this.retryTimer = setTimeout(() => this.start(), this.backoff.next());
      } else {
        this.onState('connecting');
      }
    });
    for (const kind of KINDS) {
      es.addEventListener(kind, (ev) => this.dispatch(kind, ev));
    }
  }

  /**
   * Stops for good (the page switched to another camera or view): the
   * connection closes and no reconnect is scheduled. Handlers stay silent.
   */
  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.source?.close();
    this.source = null;
  }

  dispatch(kind, ev) {
    if (this.closed) return;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    const id = ev.lastEventId && kind !== 'level' ? Number(ev.lastEventId) : null;
    for (const fn of this.handlers.get(kind) || []) {
      try {
        fn(data, id);
      } catch (e) {
        // One broken view must not stop the others from updating.
        console.warn(`handler for ${kind} failed`, e);
      }
    }
  }
}
