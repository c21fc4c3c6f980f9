// The 24-hour bar of the recordings timeline, drawn on a canvas: a day of
// five-minute segments is 288 ranges and a busy day thousands of motion
// episodes, which a canvas draws in a millisecond where as many elements
// would weigh on a phone's layout. Colours come from CSS variables (dark
// mode follows), like the motion graph's.
//
// What it shows, left to right from midnight to midnight: the recorded
// segments as filled ranges, the motion episodes as marks along its foot
// (a person's taller and in another colour), the part of today still to
// come hatched, the time being played as a line, and the hours under it.
// A click or a tap anywhere asks the owner to play that time; the arrow
// keys ask for the previous or next segment. It keeps no state of its own
// beyond what it was given to draw.

import { clockMinutes, lastStartingBy } from './day.js';

// Heights in CSS pixels.
const BAR_TOP = 2;
const BAR_H = 34;
const TICK_H = 4;
const LABELLED_TICK_H = 7;
/** A mark narrower than this (CSS px) is widened to it, so a short episode shows. */
const MIN_MARK_W = 2;
/** Labels closer than this (CSS px) would collide: fewer hours get one. */
const MIN_LABEL_GAP = 30;

export class TimelineBar {
  /**
   * `onPick(ts)`: the user chose a time (click, tap). `onKey(key)`: one of
   * 'prev', 'next', 'first', 'last', 'toggle' from the keyboard.
   */
  constructor(canvas, { onPick, onKey }) {
    this.canvas = canvas;
    this.onPick = onPick;
    this.onKey = onKey;
    this.start = 0;
    this.end = 1;
    this.now = null;
    this.segments = [];
    this.episodes = [];
    this.playhead = null;
    this.queued = false;
    this.listening = new AbortController();
    const { signal } = this.listening;
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(canvas);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.draw(), { signal });
    canvas.addEventListener('click', (e) => this.onPick(this.timeAt(e.clientX), this.slop()), { signal });
    canvas.addEventListener('keydown', (e) => this.key(e), { signal });
    canvas.addEventListener('pointermove', (e) => this.hover(e.clientX), { signal });
  }

  destroy() {
    this.resize.disconnect();
    this.listening.abort();
    this.destroyed = true;
  }

  /** The day shown: [start, end) in unix seconds; `now` hatches what is still to come. */
  setDay(start, end, now) {
    this.start = start;
    this.end = end;
    this.now = now;
    this.canvas.setAttribute('aria-valuemax', String(Math.round(end - start)));
    this.setPlayhead(this.playhead);
    this.schedule();
  }

  /** Segments and episodes, each sorted by `start_ts`. */
  setData(segments, episodes) {
    this.segments = segments;
    this.episodes = episodes;
    this.schedule();
  }

  /** The time being played (unix s), or null. */
  setPlayhead(ts) {
    this.playhead = ts;
    const c = this.canvas;
    const inDay = ts !== null && ts >= this.start && ts < this.end;
    c.setAttribute('aria-valuenow', String(inDay ? Math.round(ts - this.start) : 0));
    c.setAttribute('aria-valuetext', inDay ? `playing ${clockMinutes(ts)}` : 'nothing playing');
    this.schedule();
  }

  /** The time under a pointer at `clientX`. */
  timeAt(clientX) {
    const r = this.canvas.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (clientX - r.left) / Math.max(1, r.width)));
    return this.start + f * (this.end - this.start);
  }

  /** How many seconds a few pixels are: a click that near a segment means it. */
  slop() {
    return (4 * (this.end - this.start)) / Math.max(1, this.canvas.clientWidth);
  }

  key(e) {
    const keys = { ArrowLeft: 'prev', ArrowRight: 'next', Home: 'first', End: 'last', Enter: 'toggle', ' ': 'toggle' };
    const what = keys[e.key];
    if (!what || e.altKey || e.ctrlKey || e.metaKey) return;
    e.preventDefault();
    this.onKey(what);
  }

  /** The tooltip says what is at the pointer: recorded or not, motion or a person. */
  hover(clientX) {
    const t = this.timeAt(clientX);
    const i = lastStartingBy(this.segments, t);
    const parts = [clockMinutes(t), i >= 0 && this.segments[i].end_ts > t ? 'recorded' : 'not recorded'];
    let person = false;
    let motion = false;
    const near = this.slop() / 2;
    for (const e of this.episodes) {
      if (e.start_ts - near > t) break;
      if (e.end_ts + near >= t) {
        if (e.person) person = true;
        else motion = true;
      }
    }
    if (person) parts.push('a person seen');
    else if (motion) parts.push('motion');
    this.canvas.title = parts.join(' · ');
  }

  /** Coalesces updates into one draw per animation frame. */
  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.draw();
    });
  }

  draw() {
    if (this.destroyed) return;
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const cssW = c.clientWidth;
    const cssH = c.clientHeight;
    const w = Math.max(1, Math.round(cssW * dpr));
    const hgt = Math.max(1, Math.round(cssH * dpr));
    if (c.width !== w || c.height !== hgt) {
      c.width = w;
      c.height = hgt;
    }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    const css = getComputedStyle(c);
    const colour = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const span = this.end - this.start;
    const x = (t) => ((t - this.start) / span) * cssW;
    const clampX = (t) => Math.min(cssW, Math.max(0, x(t)));

    // The track, and the part of today still to come.
    ctx.fillStyle = colour('--tl-track', '#e3e6ea');
    ctx.fillRect(0, BAR_TOP, cssW, BAR_H);
    if (this.now !== null && this.now < this.end) {
      const from = clampX(this.now);
      ctx.fillStyle = colour('--tl-future', '#f4f5f7');
      ctx.fillRect(from, BAR_TOP, cssW - from, BAR_H);
      ctx.save();
      ctx.beginPath();
      ctx.rect(from, BAR_TOP, cssW - from, BAR_H);
      ctx.clip();
      ctx.strokeStyle = colour('--tl-future-hatch', '#d5d9de');
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let hx = from - BAR_H; hx < cssW; hx += 6) {
        ctx.moveTo(hx, BAR_TOP + BAR_H);
        ctx.lineTo(hx + BAR_H, BAR_TOP);
      }
      ctx.stroke();
      ctx.restore();
    }

    // Recorded segments. Segments that follow on within a pixel are drawn
    // as one range: side by side, their anti-aliased edges would leave
    // hairline seams that look like gaps.
    ctx.fillStyle = colour('--tl-rec', '#0b5fcc');
    let run = null;
    const fill = () => run && ctx.fillRect(run[0], BAR_TOP, Math.max(1 / dpr, run[1] - run[0]), BAR_H);
    for (const s of this.segments) {
      if (s.end_ts <= this.start || s.start_ts >= this.end) continue;
      const x0 = clampX(s.start_ts);
      const x1 = clampX(s.end_ts);
      if (run && x0 - run[1] <= 1 / dpr) {
        run[1] = Math.max(run[1], x1);
      } else {
        fill();
        run = [x0, x1];
      }
    }
    fill();

    // Motion episodes along the foot of the bar; a person's reach higher
    // and come last, so they stay visible where both overlap.
    const foot = BAR_TOP + BAR_H;
    const marks = (person, fill, height) => {
      ctx.fillStyle = fill;
      for (const e of this.episodes) {
        if (Boolean(e.person) !== person || e.end_ts < this.start || e.start_ts >= this.end) continue;
        const x0 = clampX(e.start_ts);
        const wd = Math.max(MIN_MARK_W, clampX(e.end_ts) - x0);
        ctx.fillRect(Math.min(x0, cssW - wd), foot - height, wd, height);
      }
    };
    marks(false, colour('--tl-motion', '#e8a317'), Math.round(BAR_H * 0.35));
    marks(true, colour('--tl-person', '#c2185b'), Math.round(BAR_H * 0.7));

    // Hours: a tick each, a label where there is room.
    const hourW = (3600 / span) * cssW;
    const every = [1, 2, 3, 4, 6, 12].find((n) => n * hourW >= MIN_LABEL_GAP) ?? 24;
    ctx.fillStyle = colour('--tl-text', '#56606b');
    ctx.strokeStyle = colour('--tl-text', '#56606b');
    ctx.lineWidth = 1;
    ctx.font = `${Math.round(parseFloat(css.fontSize) * 0.75) || 11}px ${css.fontFamily}`;
    ctx.textBaseline = 'top';
    ctx.beginPath();
    for (let t = this.start; t <= this.end + 1; t += 3600) {
      const hour = new Date(t * 1000).getHours();
      const at = t >= this.end ? 24 : hour;
      const labelled = at % every === 0;
      const tx = Math.round(clampX(Math.min(t, this.end))) + 0.5;
      ctx.moveTo(tx, foot);
      ctx.lineTo(tx, foot + (labelled ? LABELLED_TICK_H : TICK_H));
      if (labelled) {
        const text = String(at).padStart(2, '0');
        ctx.textAlign = tx < 8 ? 'left' : tx > cssW - 8 ? 'right' : 'center';
        ctx.fillText(text, tx, foot + LABELLED_TICK_H + 1);
      }
    }
    ctx.stroke();

    // The time being played.
    const p = this.playhead;
    if (p !== null && p >= this.start && p < this.end) {
      const px = Math.round(clampX(p));
      ctx.fillStyle = colour('--tl-head', '#1b1f24');
      ctx.fillRect(px - 1, 0, 2, foot + 2);
      ctx.beginPath();
      ctx.moveTo(px - 5, 0);
      ctx.lineTo(px + 5, 0);
      ctx.lineTo(px, 6);
      ctx.closePath();
      ctx.fill();
    }
  }
}
