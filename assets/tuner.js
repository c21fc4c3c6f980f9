// The motion tuner: what the detector sees, drawn over the live picture.
//
// While "Tuner" is on, each `level` event's `boxes` (normalized [x, y, w, h]
// of the moving blobs) replace the previous ones over the picture, and the
// score and changed area show beside the threshold, so a threshold, a mask or
// a zone can be judged against real motion. Level events come at most twice
// a second; boxes with no event for CLEAR_MS are stale and go. Off (the
// default), a level event costs one test. A server that sends no boxes yet
// shows the numbers only.

import { $ } from './util.js';
import { svg } from './overlay.js';

const CLEAR_MS = 1500;

export class Tuner {
  constructor(overlay) {
    this.overlay = overlay;
    this.layer = overlay.layer('boxes');
    this.toggle = $('tuner-toggle');
    this.readout = $('tuner-readout');
    this.score = $('tuner-score');
    this.area = $('tuner-area');
    this.on = false;
    this.boxes = [];
    this.clearTimer = null;
    this.listening = new AbortController();
    this.toggle.checked = false;
    this.toggle.addEventListener('change', () => this.set(this.toggle.checked), { signal: this.listening.signal });
    this.set(false);
  }

  destroy() {
    this.set(false);
    this.listening.abort();
  }

  set(on) {
    this.on = on;
    this.readout.hidden = !on;
    if (!on) this.clear();
    this.score.textContent = '–';
    this.area.textContent = '–';
  }

  /** One `level` event: {change, area?, boxes?, threshold, ...}. */
  level(d) {
    if (!this.on) return;
    this.score.textContent = Number.isFinite(d.change) ? d.change.toFixed(1) : '–';
    this.area.textContent = Number.isFinite(d.area) ? `${d.area.toFixed(1)} %` : '–';
    this.boxes = Array.isArray(d.boxes) ? d.boxes.filter((b) => Array.isArray(b) && b.length === 4) : [];
    this.render();
    clearTimeout(this.clearTimer);
    this.clearTimer = setTimeout(() => this.clear(), CLEAR_MS);
  }

  clear() {
    clearTimeout(this.clearTimer);
    this.boxes = [];
    this.layer.replaceChildren();
  }

  /** Redraws the boxes (after an event, or when the picture changes size). */
  render() {
    const o = this.overlay;
    this.layer.replaceChildren(...this.boxes.map(([x, y, w, h], i) => svg('rect', {
      class: `tuner-box${i === 0 ? ' largest' : ''}`,
      x: x * o.width, y: y * o.height, width: w * o.width, height: h * o.height,
      dataset: { kind: 'box' },
    })));
  }
}
