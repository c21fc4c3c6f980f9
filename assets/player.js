// The clip player. A clip is a Matroska file of the camera's own JPEGs
// (V_MJPEG), which no browser plays by itself: the player reads the clip's
// frame index (`URL/index`: each frame's time and byte range), fetches the
// frames it needs with Range requests and shows them one by one in an <img>,
// timed by their own timestamps. Only a few frames around the one on show
// are held (as object URLs), so a long clip costs no more memory than a
// short one.
//
// A clip of an RTSP camera's own H.264/H.265 is an MP4 file (`.mp4`): the
// browser plays it itself, in a <video controls> element in the same dialog.
//
// One dialog serves every camera; it is built on first use. Closing it
// (button, Esc) stops the timers, aborts what is in flight and lets go of
// every object URL.

import { h } from './util.js';

/** Frames fetched ahead of the one on show (at ×1), and kept behind it. */
const AHEAD = 6;
const BEHIND = 2;
const SPEEDS = [1, 2, 4];
/** Behind schedule by this much (slow network), playback re-anchors instead of skipping. */
const LATE_MS = 400;

/** 3200 ms -> "0:03.2". */
export function formatClipTime(ms) {
  const tenths = Math.max(0, Math.floor(ms / 100));
  const m = Math.floor(tenths / 600);
  const s = Math.floor((tenths % 600) / 10);
  return `${m}:${String(s).padStart(2, '0')}.${tenths % 10}`;
}

/** The file name at the end of a clip URL. */
export function clipName(url) {
  const last = String(url).split('?')[0].split('/').pop() || '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

class HttpError extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

let instance = null;

/** The page's one player. */
export function player() {
  if (!instance) instance = new ClipPlayer();
  return instance;
}

/**
 * The camera view goes (another camera is shown): the player closes, and
 * forgets which clips were deleted (names are per camera).
 */
export function closePlayer() {
  if (!instance) return;
  instance.close();
  instance.deleted.clear();
}

/** Whether a clip is an MP4 the browser plays itself. */
export function isMp4(name) {
  return /\.mp4$/i.test(String(name));
}

export class ClipPlayer {
  constructor() {
    this.build();
    this.session = null;
    // Clips deleted (by name) while this page was open, to say so at once.
    this.deleted = new Set();
  }

  build() {
    const btn = (id, text, label) => h('button', { type: 'button', id, class: 'secondary small-btn', 'aria-label': label, title: label }, text);
    this.title = h('h2', { id: 'player-title', class: 'player-title' }, 'Clip');
    this.closeBtn = h('button', { type: 'button', id: 'player-close', class: 'secondary small-btn', 'aria-label': 'Close player' }, '✕');
    this.img = h('img', { id: 'player-img', alt: 'clip frame', width: 640, height: 360 });
    this.status = h('p', { id: 'player-status', class: 'player-status', role: 'status' });
    this.video = h('video', { id: 'player-video', controls: true, playsinline: true, preload: 'metadata', width: 640, height: 360, hidden: true });
    this.screen = h('div', { class: 'player-screen' }, this.img, this.video, this.status);
    this.range = h('input', { type: 'range', id: 'player-range', min: 0, max: 0, step: 1, value: 0, 'aria-label': 'Position in the clip', disabled: true });
    this.time = h('span', { id: 'player-time', class: 'player-time', 'data-testid': 'player-time' }, '0:00.0 / 0:00.0');
    this.counter = h('span', { id: 'player-frame', class: 'player-frame muted small', 'data-testid': 'player-frame' }, 'frame 0 / 0');
    this.playBtn = h('button', { type: 'button', id: 'player-play', class: 'small-btn', 'aria-label': 'Play', disabled: true }, 'Play');
    this.prevBtn = btn('player-prev', '◀︎|', 'Previous frame');
    this.nextBtn = btn('player-next', '|▶︎', 'Next frame');
    this.speedBtns = SPEEDS.map((s) => h('button', {
      type: 'button', class: 'secondary small-btn player-speed', dataset: { speed: String(s) }, 'aria-pressed': s === 1 ? 'true' : 'false',
    }, `×${s}`));
    this.download = h('a', { id: 'player-download', class: 'btn-link small-btn', href: '#', download: '' }, 'Download');
    this.scrub = h('div', { class: 'player-scrub' }, this.range,
      h('div', { class: 'player-readout' }, this.time, this.counter));
    this.frameControls = h('span', { class: 'player-frame-controls' },
      this.prevBtn, this.playBtn, this.nextBtn,
      h('span', { class: 'player-speeds', role: 'group', 'aria-label': 'Speed' }, this.speedBtns));
    this.dialog = h('dialog', { id: 'player', class: 'player', 'aria-labelledby': 'player-title' },
      h('div', { class: 'player-head' }, this.title, this.closeBtn),
      this.screen,
      this.scrub,
      h('div', { class: 'player-controls' }, this.frameControls, this.download));
    document.body.append(this.dialog);

    this.closeBtn.addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => this.end());
    // A click on the backdrop (outside the box) closes too.
    this.dialog.addEventListener('click', (e) => { if (e.target === this.dialog) this.dialog.close(); });
    this.playBtn.addEventListener('click', () => this.toggle());
    this.prevBtn.addEventListener('click', () => this.step(-1));
    this.nextBtn.addEventListener('click', () => this.step(1));
    for (const b of this.speedBtns) b.addEventListener('click', () => this.setSpeed(Number(b.dataset.speed)));
    this.range.addEventListener('input', () => this.seek(Number(this.range.value)));
    this.range.addEventListener('change', () => this.seek(Number(this.range.value)));
    this.dialog.addEventListener('keydown', (e) => this.key(e));
  }

  /**
   * Opens a clip. `url` is the clip's file; `name` its file name (from the
   * URL when not given); `pending` says it may still be recording (from a
   * `motion` or `motion_end` event): a 404 then means "not saved yet", and
   * the player waits for the clip's `clip` event (see saved()).
   */
  open({ url, name = clipName(url), pending = false, title = null }) {
    this.end();
    const s = {
      url, name, pending,
      abort: new AbortController(),
      frames: [],
      cache: new Map(), // index -> Promise<object URL>
      urls: new Map(), // index -> object URL, to revoke
      cur: 0,
      playing: false,
      speed: 1,
      timer: null,
      run: 0, // bumped to stop a playback loop
      shownUrl: null,
      waiting: false, // for the clip to be saved
      saved: false, // its `clip` event came
      mp4: isMp4(name), // played by the <video> element
    };
    this.session = s;
    this.title.textContent = title || name;
    this.download.href = url;
    this.download.setAttribute('download', name);
    this.img.removeAttribute('src');
    this.img.hidden = true;
    this.stopVideo();
    this.scrub.hidden = s.mp4;
    this.frameControls.hidden = s.mp4;
    this.range.value = '0';
    this.range.max = '0';
    this.setSpeedButtons(1);
    this.setControls(false);
    this.counter.textContent = 'frame 0 / 0';
    this.time.textContent = '0:00.0 / 0:00.0';
    if (!this.dialog.open) this.dialog.showModal();
    this.load(s);
  }

  /** Shows a message over the picture (empty: none); `kind` 'error' stands out. */
  say(text, kind = 'info') {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
    this.status.hidden = !text;
  }

  setControls(on) {
    for (const el of [this.range, this.playBtn, this.prevBtn, this.nextBtn]) el.disabled = !on;
  }

  async load(s) {
    if (this.deleted.has(s.name)) {
      this.say('This clip was deleted.', 'error');
      return;
    }
    this.say(s.pending ? 'Loading clip…' : 'Loading…');
    let index;
    try {
      // An MP4 has no index: a HEAD says whether it is saved yet.
      const res = s.mp4
        ? await fetch(s.url, { method: 'HEAD', signal: s.abort.signal })
        : await fetch(`${s.url}/index`, { signal: s.abort.signal, headers: { Accept: 'application/json' } });
      if (!res.ok) throw new HttpError(res.status, `${res.status} ${res.statusText}`);
      if (s.mp4) {
        if (s !== this.session) return;
        this.playVideo(s);
        return;
      }
      index = await res.json();
    } catch (e) {
      if (s !== this.session) return;
      if (e.status === 404 && s.pending && s.saved) {
        // Saved while this answer was on its way: once more, for good.
        s.pending = false;
        this.load(s);
      } else if (e.status === 404 && s.pending) {
        s.waiting = true;
        this.say('Clip not saved yet (still recording), or no longer kept. It opens here once it is saved.');
      } else if (e.status === 404) {
        this.say('Clip not found (it may have been deleted).', 'error');
      } else {
        this.say(`Could not load the clip: ${e.message || e}`, 'error');
      }
      return;
    }
    if (s !== this.session) return;
    const frames = Array.isArray(index?.frames) ? index.frames.filter((f) => Array.isArray(f) && f.length >= 3) : [];
    if (frames.length === 0) {
      this.say('This clip has no frames.', 'error');
      return;
    }
    s.frames = frames;
    s.total = Number.isFinite(index.duration_s) ? index.duration_s * 1000 : frames[frames.length - 1][0];
    this.range.max = String(frames.length - 1);
    this.setControls(true);
    this.img.hidden = false;
    await this.show(s, 0);
    if (s === this.session && !s.failed) this.play();
  }

  /** Plays an MP4 clip in the <video> element. */
  playVideo(s) {
    this.say('');
    this.video.hidden = false;
    this.video.onerror = () => {
      if (s === this.session) this.say('This browser cannot play the clip: download it instead.', 'error');
    };
    this.video.src = s.url;
    this.video.play().catch(() => {});
  }

  /** Stops and empties the <video> element. */
  stopVideo() {
    this.video.onerror = null;
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
    this.video.hidden = true;
  }

  /** A `clip` event: the clip a pending session waits for may be here. */
  saved(d) {
    const s = this.session;
    if (!s || !s.pending || d?.name !== s.name) return;
    if (d.ok === false) {
      s.waiting = false;
      s.pending = false;
      this.say(`The clip could not be saved: ${d.error || 'unknown error'}`, 'error');
      return;
    }
    // Also remembered when the index is still being asked for (see load()).
    s.saved = true;
    if (s.waiting) {
      s.waiting = false;
      this.load(s);
    }
  }

  /** A `clip_deleted` event. */
  removed(name) {
    this.deleted.add(name);
    const s = this.session;
    if (s && s.name === name) {
      this.pause();
      if (s.mp4) this.video.pause();
      this.say('This clip was deleted.', 'error');
    }
  }

  /** The frame's object URL, fetched once; frames near `s.cur` are kept. */
  frame(s, i) {
    let p = s.cache.get(i);
    if (p) return p;
    const [, offset, length] = s.frames[i];
    p = (async () => {
      const res = await fetch(s.url, {
        headers: { Range: `bytes=${offset}-${offset + length - 1}` },
        signal: s.abort.signal,
      });
      if (!res.ok) throw new HttpError(res.status, `${res.status} ${res.statusText}`);
      let blob = await res.blob();
      // A server that ignored Range sent the whole file: cut the frame out.
      if (res.status === 200 && blob.size > length) blob = blob.slice(offset, offset + length);
      // The type the image decoder should see (the file's is video/x-matroska).
      blob = blob.slice(0, blob.size, 'image/jpeg');
      const url = URL.createObjectURL(blob);
      if (s !== this.session || s.cache.get(i) !== p) {
        URL.revokeObjectURL(url);
        throw new Error('closed');
      }
      s.urls.set(i, url);
      return url;
    })();
    s.cache.set(i, p);
    // A failed fetch is not kept: the next try fetches again.
    p.catch(() => { if (s.cache.get(i) === p) s.cache.delete(i); });
    return p;
  }

  /** Starts fetching the frames after `i`, and lets go of those far from it. */
  prefetch(s, i) {
    // Faster playback looks further ahead (the same time span).
    const ahead = AHEAD * s.speed;
    for (let j = i + 1; j <= Math.min(s.frames.length - 1, i + ahead); j++) this.frame(s, j).catch(() => {});
    for (const j of [...s.cache.keys()]) {
      if (j < i - BEHIND || j > i + ahead) {
        s.cache.delete(j);
        const url = s.urls.get(j);
        if (url && url !== s.shownUrl) URL.revokeObjectURL(url);
        s.urls.delete(j);
      }
    }
  }

  /** Fetches and shows frame `i`; false when it did not (closed, moved on, failed). */
  async show(s, i) {
    s.want = i;
    this.prefetch(s, i);
    let url;
    try {
      url = await this.frame(s, i);
    } catch (e) {
      if (s !== this.session || s.want !== i || e.name === 'AbortError' || e.message === 'closed') return false;
      s.failed = true;
      this.pause();
      this.say(e.status === 404 || e.status === 416
        ? 'The clip is gone (deleted?).'
        : `Could not load frame ${i + 1}: ${e.message || e}`, 'error');
      return false;
    }
    if (s !== this.session || s.want !== i) return false;
    this.display(s, i, url);
    return true;
  }

  display(s, i, url) {
    const old = s.shownUrl;
    s.cur = i;
    s.shownUrl = url;
    s.failed = false;
    this.img.src = url;
    // The previous picture's URL goes once it left the cache window.
    if (old && old !== url && ![...s.urls.values()].includes(old)) URL.revokeObjectURL(old);
    if (!this.deleted.has(s.name)) this.say('');
    this.range.value = String(i);
    this.counter.textContent = `frame ${i + 1} / ${s.frames.length}`;
    this.time.textContent = `${formatClipTime(s.frames[i][0])} / ${formatClipTime(s.total)}`;
    this.prefetch(s, i);
  }

  toggle() {
    if (this.session?.playing) this.pause();
    else this.play();
  }

  play() {
    const s = this.session;
    if (!s || s.frames.length === 0) return;
    s.playing = true;
    this.playBtn.textContent = 'Pause';
    this.playBtn.setAttribute('aria-label', 'Pause');
    // At the end, play starts over.
    this.loop(s, s.cur >= s.frames.length - 1 ? 0 : s.want ?? s.cur);
  }

  pause() {
    const s = this.session;
    if (!s) return;
    s.playing = false;
    s.run++;
    clearTimeout(s.timer);
    this.playBtn.textContent = 'Play';
    this.playBtn.setAttribute('aria-label', 'Play');
  }

  /**
   * Shows frame after frame at their own times (scaled by speed) against the
   * wall clock, so fetch and decode time does not add up into drift. When
   * frames arrive too late to keep up, the clock starts again from the late
   * frame: slower, but no frame skipped.
   */
  async loop(s, start = s.cur) {
    const run = ++s.run;
    clearTimeout(s.timer);
    const alive = () => s === this.session && s.playing && s.run === run;
    if (s.shownUrl === null || start !== s.cur) {
      if (!(await this.show(s, start)) || !alive()) return;
    }
    let wall0 = performance.now();
    let t0 = s.frames[start][0];
    for (let i = start + 1; i < s.frames.length; i++) {
      const due = wall0 + (s.frames[i][0] - t0) / s.speed;
      let url;
      try {
        url = await this.frame(s, i);
      } catch {
        if (alive()) await this.show(s, i); // says what went wrong
        return;
      }
      if (!alive()) return;
      const wait = due - performance.now();
      if (wait > 0) {
        await new Promise((resolve) => { s.timer = setTimeout(resolve, wait); });
        if (!alive()) return;
      } else if (wait < -LATE_MS) {
        wall0 = performance.now();
        t0 = s.frames[i][0];
      }
      s.want = i;
      this.display(s, i, url);
    }
    if (alive()) this.pause();
  }

  /** One frame back or forward; playback pauses. */
  step(delta) {
    const s = this.session;
    if (!s || s.frames.length === 0) return;
    this.pause();
    const base = s.want ?? s.cur;
    const i = Math.max(0, Math.min(s.frames.length - 1, base + delta));
    this.show(s, i);
  }

  /** Jumps to frame `i`; playback, if on, goes on from there. */
  async seek(i) {
    const s = this.session;
    if (!s || s.frames.length === 0 || !Number.isFinite(i)) return;
    i = Math.max(0, Math.min(s.frames.length - 1, Math.round(i)));
    const playing = s.playing;
    if (playing) {
      s.run++;
      clearTimeout(s.timer);
    }
    // The label follows the slider at once; the picture when it is here.
    this.time.textContent = `${formatClipTime(s.frames[i][0])} / ${formatClipTime(s.total)}`;
    const shown = await this.show(s, i);
    if (shown && playing && s.playing && s === this.session) this.loop(s, i);
  }

  setSpeed(speed) {
    const s = this.session;
    if (!s) return;
    s.speed = speed;
    this.setSpeedButtons(speed);
    if (s.playing) this.loop(s);
  }

  setSpeedButtons(speed) {
    for (const b of this.speedBtns) b.setAttribute('aria-pressed', Number(b.dataset.speed) === speed ? 'true' : 'false');
  }

  key(e) {
    // An MP4 clip's <video> has its own keys.
    if (!this.session || this.session.mp4 || e.altKey || e.ctrlKey || e.metaKey) return;
    const tag = e.target?.tagName;
    // The slider has its own arrow keys (they move it one frame).
    if (tag === 'INPUT') return;
    if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      e.preventDefault();
      this.step(e.key === 'ArrowLeft' ? -1 : 1);
    } else if (e.key === ' ' && tag !== 'BUTTON' && tag !== 'A') {
      e.preventDefault();
      this.toggle();
    }
  }

  /** Closes the dialog (which ends the session). */
  close() {
    if (this.dialog.open) this.dialog.close();
    this.end();
  }

  /** Ends the session: timers stop, fetches abort, every object URL is let go. */
  end() {
    const s = this.session;
    if (!s) return;
    this.pause();
    this.session = null;
    s.abort.abort();
    for (const url of s.urls.values()) URL.revokeObjectURL(url);
    if (s.shownUrl) URL.revokeObjectURL(s.shownUrl);
    s.urls.clear();
    s.cache.clear();
    this.img.removeAttribute('src');
    this.stopVideo();
    this.say('');
  }
}
