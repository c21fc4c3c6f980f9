// A camera's continuous recording as a day timeline, at the top of its
// gallery view: one local day (midnight to midnight in this browser's time
// zone) on a 24-hour bar (timeline-bar.js), previous and next day, and one
// <video> that plays the segment under the time clicked, from that time,
// and goes on into the next segment when it follows on, so a day can be
// watched across its files. The time of day played shows under it.
//
// Everything comes from `GET BASE/recordings?from=&to=`: the segments, the
// motion episodes and the recording's state, which says why the bar is
// empty when it is. Today's bar is read again while it is on show (a
// segment appears when it ends: every segment length, at most every
// REFRESH_MS); the new answer replaces the old one in a single draw, so
// nothing flickers. A line of text under the bar says what it shows, for
// those who cannot see it.

import { $, h } from './util.js';
import { getJSON } from './api.js';
import { TimelineBar } from './timeline-bar.js';
import { dayStart, nowS, clock, clockMinutes, dayTitle, isoDay, lastStartingBy } from './day.js';

const REFRESH_MS = 30000;
/** Short segments are looked for sooner, but not more often than this. */
const REFRESH_MIN_MS = 5000;
/** Recorded ranges named one by one in the summary, at most. */
const SUMMARY_RANGES = 3;
/** A segment starting at most this long after the one played ends follows on. */
const FOLLOW_S = 1.5;

/** "10 s", "5 min". */
function formatLength(s) {
  if (!Number.isFinite(s)) return '';
  return s < 60 || s % 60 ? `${s} s` : `${s / 60} min`;
}

/** Segments and episodes with the fields the timeline needs, sorted by start. */
function clean(list, fields) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((x) => x && Number.isFinite(x.start_ts) && Number.isFinite(x.end_ts) && fields.every((f) => f in x))
    .sort((a, b) => a.start_ts - b.start_ts);
}

export class Recordings {
  /** `base`: the camera's route prefix; `name`: its name (null at the root routes). */
  constructor({ base = '', name = null } = {}) {
    this.base = base;
    this.name = name;
    this.closed = false;
    this.shown = false;
    this.pageHidden = document.hidden;
    this.day = dayStart(nowS());
    // Showing today, and so the next one after midnight.
    this.live = true;
    this.segments = [];
    this.episodes = [];
    this.mode = null;
    // The recording's state in the last answer (`recording` of /recordings).
    this.rec = null;
    this.seq = 0;
    this.timer = null;
    // The segment loaded in the video, and where to seek once it is loaded.
    this.current = null;
    this.seekTo = null;
    // Where the arrow keys start from when nothing is playing (the last click).
    this.cursor = null;
    this.listening = new AbortController();
    const { signal } = this.listening;

    this.prev = $('rec-prev');
    this.next = $('rec-next');
    this.today = $('rec-today');
    this.dayLabel = $('rec-day');
    this.state = $('rec-state');
    this.summary = $('rec-summary');
    this.message = $('rec-message');
    this.figure = $('rec-player');
    this.video = $('rec-video');
    this.clock = $('rec-clock');
    this.span = $('rec-segment');
    this.bar = new TimelineBar($('rec-bar'), {
      onPick: (t, slop) => this.pick(t, slop),
      onKey: (k) => this.key(k),
    });

    // Nothing of the camera shown before stays.
    this.state.textContent = '';
    this.state.dataset.kind = 'info';
    this.summary.textContent = '';
    this.say('');
    this.unload();
    this.figure.hidden = true;

    this.prev.addEventListener('click', () => this.go(dayStart(this.day, -1)), { signal });
    this.next.addEventListener('click', () => this.go(dayStart(this.day, 1)), { signal });
    this.today.addEventListener('click', () => this.go(dayStart(nowS())), { signal });
    const v = this.video;
    v.addEventListener('loadedmetadata', () => {
      if (this.seekTo !== null && this.seekTo > 0) v.currentTime = Math.min(this.seekTo, Math.max(0, v.duration - 0.1));
      this.seekTo = null;
      this.tick();
    }, { signal });
    v.addEventListener('timeupdate', () => this.tick(), { signal });
    v.addEventListener('seeked', () => this.tick(), { signal });
    v.addEventListener('ended', () => this.followOn(), { signal });
    v.addEventListener('error', () => this.failed(), { signal });
    this.showDay();
  }

  /** The gallery view is on show: read the day and keep today's up to date. */
  show() {
    this.shown = true;
    this.load();
  }

  /** Another view is on show: stop playing and reading. */
  hide() {
    this.shown = false;
    clearTimeout(this.timer);
    this.video.pause();
  }

  /** The page was hidden or shown again (called on other changes too: only a change counts). */
  visibility() {
    const hidden = document.hidden;
    if (hidden === this.pageHidden) return;
    this.pageHidden = hidden;
    if (!this.shown) return;
    if (hidden) clearTimeout(this.timer);
    else this.load();
  }

  destroy() {
    this.closed = true;
    this.seq++;
    clearTimeout(this.timer);
    this.listening.abort();
    this.bar.destroy();
    this.unload();
  }

  /** A camera's settings (a `config` event or answer): a new `record` mode shows at once. */
  config(cfg) {
    if (typeof cfg?.record !== 'string' || cfg.record === this.mode) return;
    const first = this.mode === null;
    this.mode = cfg.record;
    if (!first && this.shown) this.load();
  }

  isToday() {
    return this.day === dayStart(nowS());
  }

  /** Shows day `start` (never past today). */
  go(start) {
    const today = dayStart(nowS());
    this.day = Math.min(start, today);
    this.live = this.day === today;
    this.segments = [];
    this.episodes = [];
    this.cursor = null;
    this.say('');
    this.summary.textContent = '';
    this.showDay();
    this.bar.setData([], []);
    this.load();
  }

  showDay() {
    const today = this.isToday();
    this.dayLabel.textContent = dayTitle(this.day);
    this.dayLabel.dateTime = isoDay(this.day);
    this.next.disabled = today;
    this.today.hidden = today;
    this.bar.setDay(this.day, dayStart(this.day, 1), today ? nowS() : null);
  }

  /** Reads the day shown; the answer for a day no longer shown is dropped. */
  async load() {
    clearTimeout(this.timer);
    if (this.closed) return;
    const seq = ++this.seq;
    // Left open over midnight, today's bar becomes the new day's.
    if (this.live) this.day = dayStart(nowS());
    const from = this.day;
    const to = dayStart(this.day, 1);
    let data;
    try {
      data = await getJSON(`${this.base}/recordings?from=${from}&to=${to}`);
    } catch (e) {
      if (seq !== this.seq || this.closed) return;
      this.showState(null, `Could not read the recordings: ${e.message}`);
      this.schedule();
      return;
    }
    if (seq !== this.seq || this.closed) return;
    this.segments = clean(data?.recordings, ['url', 'name']);
    this.episodes = clean(data?.episodes, []);
    this.rec = data?.recording ?? null;
    if (typeof this.rec?.mode === 'string') this.mode = this.rec.mode;
    this.showDay();
    this.bar.setData(this.segments, this.episodes);
    this.showState(this.rec);
    this.showSummary();
    this.schedule();
  }

  /** Today's bar is read again while it is on show: about when a new segment is due. */
  schedule() {
    clearTimeout(this.timer);
    if (!this.shown || this.closed || document.hidden || !this.live) return;
    const on = this.rec?.state === 'recording' || this.rec?.state === 'waiting';
    const segment = on && Number.isFinite(this.rec.segment_s)
      ? (this.rec.segment_s + 2) * 1000
      : REFRESH_MS;
    this.timer = setTimeout(() => this.load(), Math.min(REFRESH_MS, Math.max(REFRESH_MIN_MS, segment)));
  }

  /** What the bar shows, in words: the recorded ranges, the segments, the episodes. */
  showSummary() {
    const end = dayStart(this.day, 1);
    const ranges = [];
    for (const s of this.segments) {
      const last = ranges[ranges.length - 1];
      if (last && s.start_ts - last[1] <= FOLLOW_S) last[1] = Math.max(last[1], s.end_ts);
      else ranges.push([s.start_ts, s.end_ts]);
    }
    const clip = (t) => clockMinutes(Math.min(end, Math.max(this.day, t)));
    const parts = [];
    if (!ranges.length) {
      parts.push('Nothing recorded on this day.');
    } else {
      const named = ranges.slice(0, SUMMARY_RANGES).map(([a, b]) => `${clip(a)}–${clip(b)}`).join(', ');
      const more = ranges.length > SUMMARY_RANGES ? ` and ${ranges.length - SUMMARY_RANGES} more` : '';
      const n = this.segments.length;
      parts.push(`Recorded ${named}${more} (${n} segment${n === 1 ? '' : 's'}).`);
    }
    const e = this.episodes.length;
    const people = this.episodes.filter((x) => x.person).length;
    if (e) parts.push(`${e} motion episode${e === 1 ? '' : 's'}${people ? `, ${people} with a person` : ''}.`);
    this.summary.textContent = parts.join(' ');
  }

  /** The recording's state (as in /status), so an empty bar explains itself. */
  showState(rec, failure = null) {
    const el = this.state;
    if (failure) {
      el.dataset.kind = 'error';
      el.textContent = failure;
      return;
    }
    if (!rec) {
      el.dataset.kind = 'info';
      el.textContent = '';
      return;
    }
    const any = this.segments.length > 0;
    const error = typeof rec.error === 'string' && rec.error ? rec.error : null;
    if (rec.state === 'off' || rec.mode === 'events') {
      el.dataset.kind = 'off';
      const live = h('a', { href: this.name === null ? '#live' : `#cam/${encodeURIComponent(this.name)}` }, 'Live view');
      el.replaceChildren(
        'Continuous recording is off — turn it on with “Record continuously” under Controls in the ', live, '.',
        any ? ' The bar shows what was recorded while it was on.' : ' Only motion clips are kept (below).');
    } else if (rec.state === 'unavailable') {
      el.dataset.kind = 'error';
      el.textContent = `Continuous recording is unavailable: ${error ?? 'this camera cannot record continuously'}.`;
    } else if (rec.state === 'waiting') {
      el.dataset.kind = 'warn';
      el.textContent = 'Continuous recording is on and waiting for the camera\'s stream (a segment starts at its next keyframe).'
        + (error ? ` Last error: ${error}` : '');
    } else {
      el.dataset.kind = error ? 'warn' : 'ok';
      const length = formatLength(rec.segment_s);
      const since = Number.isFinite(rec.since) ? ` (the one under way began at ${clock(rec.since)})` : '';
      const parts = [`Recording continuously${length ? ` in ${length} segments` : ''}; a segment shows on the bar when it ends${since}.`];
      if (Number.isFinite(rec.gaps) && rec.gaps > 0) parts.push(`${rec.gaps} gap${rec.gaps === 1 ? '' : 's'} in the stream since lookout started.`);
      if (error) parts.push(`Last error: ${error}`);
      el.textContent = parts.join(' ');
    }
  }

  say(text) {
    this.message.textContent = text;
  }

  // ---- playing ---------------------------------------------------------------

  /** A click or tap on the bar at `t`; a segment within `slop` seconds counts as hit. */
  pick(t, slop) {
    const list = this.segments;
    const i = lastStartingBy(list, t);
    if (i >= 0 && list[i].end_ts > t) {
      this.play(list[i], t - list[i].start_ts);
      return;
    }
    // Between segments: one a few pixels away is what the finger meant;
    // further off, nothing is played and the next recording is named.
    const before = i >= 0 ? list[i] : null;
    const after = list[i + 1] ?? null;
    const toAfter = after ? after.start_ts - t : Infinity;
    const toBefore = before ? t - before.end_ts : Infinity;
    if (Math.min(toAfter, toBefore) <= slop) {
      this.play(toAfter <= toBefore ? after : before, 0);
      return;
    }
    this.cursor = t;
    const next = after && after.start_ts < dayStart(this.day, 1)
      ? ` The next recording starts at ${clockMinutes(after.start_ts)}.`
      : '';
    this.say(`Nothing recorded at ${clockMinutes(t)}.${next}`);
  }

  /** The arrow keys, Home and End, Enter and Space on the bar. */
  key(what) {
    const list = this.segments;
    if (what === 'toggle') {
      if (!this.current) {
        this.say('Nothing is playing: click the bar, or use ← and →.');
      } else if (this.video.paused) {
        this.resume();
      } else {
        this.video.pause();
      }
      return;
    }
    if (!list.length) {
      this.say('Nothing recorded on this day.');
      return;
    }
    const at = this.current ? list.findIndex((s) => s.name === this.current.name) : -1;
    let target;
    if (what === 'first') target = list[0];
    else if (what === 'last') target = list[list.length - 1];
    else if (at >= 0) target = list[at + (what === 'next' ? 1 : -1)];
    else if (what === 'next') target = list.find((s) => this.cursor === null || s.start_ts > this.cursor);
    else target = [...list].reverse().find((s) => this.cursor === null || s.end_ts <= this.cursor);
    if (!target) {
      this.say(what === 'next' ? 'No later recording on this day.' : 'No earlier recording on this day.');
      return;
    }
    this.play(target, 0);
  }

  /** Plays `seg` from `offset` seconds into it, in the one video. */
  play(seg, offset) {
    const v = this.video;
    this.say('');
    this.figure.hidden = false;
    this.span.textContent = `recording ${clock(seg.start_ts)}–${clock(seg.end_ts)}`;
    if (this.current?.name === seg.name && v.readyState >= 1) {
      v.currentTime = Math.max(0, offset);
    } else {
      // Seeking waits for the file's index (loadedmetadata).
      this.seekTo = Math.max(0, offset);
      v.src = seg.url;
    }
    this.current = seg;
    this.cursor = seg.start_ts + offset;
    this.showClock(seg.start_ts + offset);
    this.resume();
  }

  resume() {
    this.video.play().catch((e) => {
      // A newer load took over (AbortError), or the browser wants a tap first.
      if (e?.name === 'NotAllowedError' && !this.closed) this.say('Press play on the video to watch.');
    });
  }

  /** The time of day at the playhead, under the video and on the bar. */
  tick() {
    if (!this.current) return;
    const t = this.seekTo ?? this.video.currentTime;
    this.showClock(this.current.start_ts + t);
  }

  showClock(ts) {
    this.clock.textContent = clock(ts);
    this.clock.dataset.ts = String(ts);
    this.bar.setPlayhead(ts);
  }

  /** The segment ended: the next one plays on when it follows within FOLLOW_S. */
  async followOn() {
    const seg = this.current;
    if (!seg) return;
    let next = this.following(this.segments, seg);
    if (!next) {
      // Not on the bar shown (another day is shown, or it ended since the
      // last read): ask for the moments just after this one.
      try {
        const data = await getJSON(`${this.base}/recordings?from=${seg.end_ts}&to=${seg.end_ts + FOLLOW_S + 1}`);
        next = this.following(clean(data?.recordings, ['url', 'name']), seg);
      } catch {
        next = null;
      }
      if (this.closed || this.current !== seg) return;
    }
    if (!next) {
      this.say(`The recording ends at ${clock(seg.end_ts)}.`);
      return;
    }
    // Past midnight, the bar follows to the day being watched.
    if (next.start_ts >= dayStart(this.day, 1) && next.start_ts < dayStart(nowS(), 1)) this.go(dayStart(next.start_ts));
    this.play(next, Math.max(0, seg.end_ts - next.start_ts));
  }

  /** The segment after `seg` in `list` when it starts within FOLLOW_S of its end. */
  following(list, seg) {
    const next = list.find((s) => s.start_ts > seg.start_ts && s.name !== seg.name);
    return next && next.start_ts - seg.end_ts <= FOLLOW_S ? next : null;
  }

  failed() {
    if (!this.current || this.closed) return;
    const code = this.video.error?.code;
    // Retention may have taken it since the bar was drawn.
    this.say(code === 4
      ? `The recording of ${clock(this.current.start_ts)} cannot be played: it is gone, or this browser cannot play its codec.`
      : `The recording of ${clock(this.current.start_ts)} could not be played.`);
    if (this.shown) this.load();
  }

  /** Stops the video and lets go of its file. */
  unload() {
    const v = this.video;
    v.pause();
    if (v.hasAttribute('src')) {
      v.removeAttribute('src');
      v.load();
    }
    this.current = null;
    this.seekTo = null;
    this.clock.textContent = '';
    delete this.clock.dataset.ts;
    this.span.textContent = '';
    this.bar?.setPlayhead(null);
  }
}
