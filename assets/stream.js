// The live view: an <img> on /stream.jpg (MJPEG) that comes back by itself.
//
// When the stream drops (server restart, network change) the image fires
// `error`; we reload it with a cache-busting query after a backoff. A feed
// reconnect also restarts it, since Chrome does not always report the end of
// a multipart image that already showed frames. While the page is hidden (or
// the gallery is showing) the stream is paused: it would cost bandwidth and
// one of the browser's six connections per host for nothing.

import { Backoff } from './util.js';

export class LiveStream {
  /**
   * `path` may carry a query (`/cams/yard/stream.jpg?fps=2`).
   * `onState(state)`: 'connecting' | 'live' | 'retrying' | 'paused'.
   */
  constructor(img, { path = '/stream.jpg', onState = () => {} } = {}) {
    this.img = img;
    this.path = path;
    this.onState = onState;
    this.backoff = new Backoff(500, 10000);
    this.retryTimer = null;
    this.paused = false;
    // Each load gets a generation so late events of an abandoned load are ignored.
    this.generation = 0;
    // The <img> outlives this object when the page switches camera: destroy()
    // takes these listeners off again.
    this.listening = new AbortController();
    const { signal } = this.listening;
    img.addEventListener('load', () => this.loaded(), { signal });
    img.addEventListener('error', () => this.failed(), { signal });
  }

  start() {
    clearTimeout(this.retryTimer);
    this.paused = false;
    this.generation++;
    this.onState('connecting');
    const sep = this.path.includes('?') ? '&' : '?';
    this.img.src = `${this.path}${sep}t=${Date.now()}`;
  }

  /** Restarts unless paused (e.g. after the event feed came back). */
  restart() {
    if (!this.paused) this.start();
  }

  pause() {
    if (this.paused) return;
    clearTimeout(this.retryTimer);
    this.paused = true;
    this.generation++;
    // Dropping the source aborts the MJPEG request (no placeholder image: a
    // data: URL trips the page's Content-Security-Policy in Chromium).
    this.img.removeAttribute('src');
    this.onState('paused');
  }

  /** Stops for good and lets go of the image, without reporting a state. */
  destroy() {
    this.listening.abort();
    clearTimeout(this.retryTimer);
    this.paused = true;
    this.generation++;
    this.img.removeAttribute('src');
  }

  loaded() {
    if (this.paused || !this.img.src.includes(this.path)) return;
    this.backoff.reset();
    this.onState('live');
  }

  failed() {
    if (this.paused || !this.img.src.includes(this.path)) return;
    const gen = this.generation;
    this.onState('retrying');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (gen === this.generation && !this.paused) this.start();
    }, this.backoff.next());
  }
}
