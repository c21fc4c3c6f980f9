// The live view of an IP camera: its own H.264 (or H.265) as fragmented MP4
// from /live.mp4, played with Media Source Extensions on a <video>.
//
// This costs the camera's bitrate instead of MJPEG's (several times less)
// and shows every frame the camera sends. The server answers with the init
// segment, then one fragment (moof + mdat) per frame as frames arrive,
// starting at the newest keyframe, and ends the response when the stream's
// parameters change: each response is played in a MediaSource of its own
// (its times start at 0 again), and the player simply connects again.
//
// A live view must stay live: the player keeps little buffer behind the
// playhead (a long one only costs memory) and jumps to the live edge when
// playback falls behind (a stall, a background tab). MSE removes frames only
// up to a keyframe (a frame after the removed range that depends on removed
// ones goes too), so the player notes where each keyframe lies and cuts the
// buffer at the newest keyframe at or before the playhead: at most one
// keyframe interval (typically 1-2 s) stays behind it.
//
// ManagedMediaSource is what iOS Safari has (and MediaSource is not there);
// elsewhere it is MediaSource.

import { Backoff } from './util.js';

// Playback further behind the newest frame than this jumps forward...
const MAX_LATENCY_S = 1.0;
// ...to this far behind it (a little slack so it does not stall at once).
const JUMP_TO_S = 0.3;
// Between the two, it plays a little faster until it is this close again
// (catching up without a jump the eye sees).
const CATCH_UP_ABOVE_S = 0.5;
const CAUGHT_UP_BELOW_S = 0.3;
const CATCH_UP_RATE = 1.1;
// Bitrate: bytes received over this window.
const RATE_WINDOW_MS = 4000;
// How often the state (resolution, bitrate) is reported.
const INFO_EVERY_MS = 1000;
// A response that sends nothing for this long is stuck: connect again.
const STALL_MS = 10000;
// The video failing this many times in a row without ever playing means the
// browser will not play it: MJPEG instead.
const MEDIA_ERRORS_GIVE_UP = 3;
// A connection that played this long was a good one: the backoff starts over.
const GOOD_CONNECTION_MS = 5000;

/** The Media Source Extensions constructor of this browser, or null. */
function mediaSourceClass() {
  return window.ManagedMediaSource || window.MediaSource || null;
}

/** "H.264", "H.265" or the codec string itself, for people. */
export function codecName(codecs) {
  const c = String(codecs || '').replace(/^.*codecs="?([^";]*)"?.*$/, '$1');
  if (/^(avc1|avc3)/i.test(c)) return 'H.264';
  if (/^(hvc1|hev1)/i.test(c)) return 'H.265';
  return c || 'video';
}

/** The MIME type of a fragmented MP4 stream with `codec` (RFC 6381). */
export function mimeOf(codec) {
  return `video/mp4; codecs="${codec}"`;
}

/**
 * Whether this browser can play `mime` through MSE: `{ ok: true }` or
 * `{ ok: false, reason }` (a sentence for people).
 */
export function canPlay(mime) {
  const MS = mediaSourceClass();
  if (!MS) return { ok: false, reason: 'this browser has no Media Source Extensions' };
  let ok = false;
  try {
    ok = MS.isTypeSupported(mime);
  } catch {
    ok = false;
  }
  return ok ? { ok: true } : { ok: false, reason: `this browser cannot play ${codecName(mime)}` };
}

// ---- a minimal reader of the MP4 boxes the server sends -----------------------

const fourcc = (b, at) => String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3]);

/** The boxes in `b[from..to]`: `{ type, start, end, body }` (body: where its content starts). */
function* boxes(b, from = 0, to = b.length) {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = from;
  while (at + 8 <= to) {
    let size = view.getUint32(at);
    let body = at + 8;
    if (size === 1) {
      if (at + 16 > to) return;
      size = Number(view.getBigUint64(at + 8));
      body = at + 16;
    } else if (size === 0) {
      size = to - at;
    }
    if (size < body - at || at + size > to) return;
    yield { type: fourcc(b, at + 4), start: at, end: at + size, body };
    at += size;
  }
}

/** The first child box of `type` inside `box`, or null. */
function child(b, box, type, skip = 0) {
  for (const c of boxes(b, box.body + skip, box.end)) if (c.type === type) return c;
  return null;
}

/** The timescale of the (first) track of an init segment, or null. */
function timescaleOf(b, moov) {
  const trak = child(b, moov, 'trak');
  const mdia = trak && child(b, trak, 'mdia');
  const mdhd = mdia && child(b, mdia, 'mdhd');
  if (!mdhd) return null;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const version = b[mdhd.body];
  return view.getUint32(mdhd.body + (version === 1 ? 20 : 12));
}

/**
 * A producer reference time box: the wall-clock time (Unix ms) lookout had
 * the frame whose decode time is `mediaTime` (in the track's timescale).
 */
function referenceTime(b, prft) {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const version = b[prft.body];
  const at = prft.body + 8; // version, flags, reference track id
  if (at + 8 + (version === 1 ? 8 : 4) > prft.end) return null;
  const secs = view.getUint32(at) - 2208988800; // NTP counts from 1900
  const fraction = view.getUint32(at + 4) / 2 ** 32;
  const mediaTime = version === 1 ? Number(view.getBigUint64(at + 8)) : view.getUint32(at + 8);
  return { wallMs: (secs + fraction) * 1000, mediaTime };
}

/**
 * A fragment's decode time (in the track's timescale) and whether its first
 * sample is a keyframe, or null when the moof is not one we understand.
 */
function fragmentInfo(b, moof) {
  const traf = child(b, moof, 'traf');
  if (!traf) return null;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tfhd = child(b, traf, 'tfhd');
  const tfdt = child(b, traf, 'tfdt');
  const trun = child(b, traf, 'trun');
  if (!tfdt || !trun) return null;
  const time = b[tfdt.body] === 1 ? Number(view.getBigUint64(tfdt.body + 4)) : view.getUint32(tfdt.body + 4);
  // The first sample's flags: trun's first-sample-flags, its per-sample
  // flags, or tfhd's default.
  const trunFlags = view.getUint32(trun.body) & 0xffffff;
  let at = trun.body + 8; // version+flags, sample count
  if (trunFlags & 0x1) at += 4; // data offset
  let flags = null;
  if (trunFlags & 0x4) {
    flags = view.getUint32(at);
  } else if (trunFlags & 0x400) {
    if (trunFlags & 0x100) at += 4;
    if (trunFlags & 0x200) at += 4;
    flags = view.getUint32(at);
  } else if (tfhd) {
    const tf = view.getUint32(tfhd.body) & 0xffffff;
    let p = tfhd.body + 8; // version+flags, track id
    if (tf & 0x1) p += 8;
    if (tf & 0x2) p += 4;
    if (tf & 0x8) p += 4;
    if (tf & 0x10) p += 4;
    if (tf & 0x20) flags = view.getUint32(p);
  }
  // Not a "non-sync sample": a keyframe. Unknown flags count as one.
  return { time, keyframe: flags === null || (flags & 0x10000) === 0 };
}

/**
 * Cuts a byte stream into whole top-level boxes. `push(chunk)` returns the
 * boxes completed so far as `{ type, bytes }`.
 */
class BoxSplitter {
  constructor() {
    this.pending = new Uint8Array(0);
  }

  push(chunk) {
    let b = chunk;
    if (this.pending.length) {
      b = new Uint8Array(this.pending.length + chunk.length);
      b.set(this.pending);
      b.set(chunk, this.pending.length);
    }
    const out = [];
    let used = 0;
    for (const box of boxes(b)) {
      out.push({ type: box.type, bytes: b.subarray(box.start, box.end) });
      used = box.end;
    }
    this.pending = b.slice(used);
    return out;
  }
}

// ---- the player ---------------------------------------------------------------

export class LivePlayer {
  /**
   * `video`: a <video muted playsinline autoplay>. `url`: the camera's
   * live.mp4 (with `?stream=detect` for its substream).
   * `onState(state, detail)`: 'connecting' | 'playing' | 'reconnecting' |
   * 'paused' | 'unsupported' (detail: why, for people; nothing more is
   * tried) | 'novideo' (the server has no video for this camera).
   * `onInfo({ width, height, bitrate, codec })`: about once a second while
   * connected; bitrate in bits per second over the last few seconds, null
   * until measured.
   */
  constructor(video, { url, onState = () => {}, onInfo = () => {} } = {}) {
    this.video = video;
    this.url = url;
    this.onState = onState;
    this.onInfo = onInfo;
    this.backoff = new Backoff(500, 10000);
    this.paused = true;
    this.dead = false;
    this.generation = 0;
    this.session = null;
    this.retryTimer = null;
    this.infoTimer = null;
    this.listening = new AbortController();
    const { signal } = this.listening;
    video.muted = true;
    video.playsInline = true;
    // ManagedMediaSource plays only when AirPlay has another way or none.
    video.disableRemotePlayback = true;
    // Media errors in a row on connections that never played.
    this.mediaErrors = 0;
    video.addEventListener('playing', () => {
      if (!this.session || this.paused) return;
      this.mediaErrors = 0;
      this.setState('playing');
    }, { signal });
    video.addEventListener('resize', () => this.report(), { signal });
    video.addEventListener('timeupdate', () => this.session?.keepLive(), { signal });
    video.addEventListener('error', () => this.mediaError(), { signal });
  }

  /**
   * The video element failed. Mid-stream that is worth another connection;
   * when it fails again and again before playing at all, the browser will
   * not play this (a decoder it lacks, a Content-Security-Policy without
   * `media-src blob:`): give up and say why.
   */
  mediaError() {
    const s = this.session;
    if (!s || this.paused) return;
    if (s.playingSince === null && ++this.mediaErrors >= MEDIA_ERRORS_GIVE_UP) {
      const e = this.video.error;
      this.stop();
      this.paused = true;
      this.setState('unsupported', `the browser refused the video (${e?.message || `media error ${e?.code ?? ''}`.trim()})`);
      return;
    }
    this.failed();
  }

  setState(state, detail = '') {
    if (state === this.state && detail === this.detail) return;
    this.state = state;
    this.detail = detail;
    this.onState(state, detail);
  }

  start() {
    if (this.dead) return;
    this.paused = false;
    this.connect();
  }

  /** Connects afresh unless paused (e.g. after the event feed came back). */
  restart() {
    if (!this.paused && !this.dead) this.connect();
  }

  pause() {
    if (this.paused) return;
    this.paused = true;
    this.stop();
    this.setState('paused');
  }

  /** Stops for good and lets go of the video, without reporting a state. */
  destroy() {
    this.paused = true;
    this.dead = true;
    this.stop();
    this.listening.abort();
  }

  /** Ends the connection and empties the video. */
  stop() {
    this.generation++;
    clearTimeout(this.retryTimer);
    clearInterval(this.infoTimer);
    this.session?.close();
    this.session = null;
    this.video.removeAttribute('src');
    this.video.load();
  }

  connect() {
    this.stop();
    const gen = this.generation;
    this.setState(this.state === 'reconnecting' ? 'reconnecting' : 'connecting');
    const session = new Session(this, gen);
    this.session = session;
    this.infoTimer = setInterval(() => this.report(), INFO_EVERY_MS);
    session.run().then(
      (end) => {
        if (gen !== this.generation || this.paused) return;
        if (end.unsupported) {
          this.stop();
          this.paused = true;
          this.setState('unsupported', end.unsupported);
        } else if (end.novideo) {
          this.stop();
          this.paused = true;
          this.setState('novideo', end.novideo);
        } else {
          this.retry(session);
        }
      },
      () => {
        if (gen === this.generation && !this.paused) this.retry(session);
      },
    );
  }

  /** The connection failed or ended: the next one after a backoff. */
  retry(session) {
    if (session.playedFor() > GOOD_CONNECTION_MS) this.backoff.reset();
    this.stop();
    this.setState('reconnecting');
    const gen = this.generation;
    this.retryTimer = setTimeout(() => {
      if (gen === this.generation && !this.paused) this.connect();
    }, this.backoff.next());
  }

  /** The video or the buffer went wrong mid-stream. */
  failed() {
    if (this.paused || !this.session) return;
    this.retry(this.session);
  }

  report() {
    const s = this.session;
    if (!s) return;
    const width = s.width || this.video.videoWidth || null;
    const height = s.height || this.video.videoHeight || null;
    this.onInfo({ width, height, bitrate: s.bitrate(), codec: s.codec, delayMs: s.delayMs() });
  }
}

/** One response of live.mp4 played in one MediaSource. */
class Session {
  constructor(player, gen) {
    this.player = player;
    this.video = player.video;
    this.gen = gen;
    this.abort = new AbortController();
    this.queue = [];
    this.samples = []; // [ms, bytes]
    this.timescale = null;
    // Times (s) of the keyframes still buffered, oldest first.
    this.keyframes = [];
    // [media time (s), wall-clock ms lookout had that frame], from the
    // server's prft boxes, oldest first (the last few seconds).
    this.clock = [];
    this.width = null;
    this.height = null;
    this.codec = null;
    this.playingSince = null;
    this.closed = false;
    this.url = null;
  }

  get current() {
    return !this.closed && this.gen === this.player.generation;
  }

  playedFor() {
    return this.playingSince === null ? 0 : performance.now() - this.playingSince;
  }

  /**
   * How far behind lookout the picture on screen is, in ms: now minus when
   * lookout had the frame at the playhead (null until known).
   */
  delayMs() {
    const t = this.video.currentTime;
    let wall = null;
    for (const [media, ms] of this.clock) {
      if (media > t + 1e-3) break;
      wall = ms;
    }
    return wall === null ? null : Date.now() - wall;
  }

  /** Bits per second over the last few seconds, or null until a second has passed. */
  bitrate() {
    const now = performance.now();
    while (this.samples.length && now - this.samples[0][0] > RATE_WINDOW_MS) this.samples.shift();
    const span = Math.min(RATE_WINDOW_MS, now - (this.startedAt ?? now));
    if (span < 1000) return null;
    const bytes = this.samples.reduce((sum, [, n]) => sum + n, 0);
    return (bytes * 8 * 1000) / span;
  }

  close() {
    this.closed = true;
    this.abort.abort();
    clearTimeout(this.stallTimer);
    if (this.url) URL.revokeObjectURL(this.url);
  }

  /**
   * Fetches and plays until the response ends or fails. Resolves with
   * `{}` (connect again), `{ unsupported }` or `{ novideo }`.
   */
  async run() {
    const res = await fetch(this.player.url, { signal: this.abort.signal, cache: 'no-store' });
    if (res.status === 404) {
      let why = 'this camera has no video stream';
      try {
        why = (await res.json()).error || why;
      } catch {
        // The default sentence.
      }
      return { novideo: why };
    }
    if (!res.ok || !res.body) {
      res.body?.cancel();
      return {};
    }
    const mime = res.headers.get('content-type') || '';
    this.codec = codecName(mime);
    const verdict = canPlay(mime);
    if (!verdict.ok) {
      this.abort.abort();
      return { unsupported: verdict.reason };
    }
    const size = /^(\d+)x(\d+)$/.exec(res.headers.get('x-video-size') || '');
    if (size) {
      this.width = Number(size[1]);
      this.height = Number(size[2]);
    }
    await this.open(mime);
    if (!this.current) return {};
    this.startedAt = performance.now();
    const reader = res.body.getReader();
    const splitter = new BoxSplitter();
    this.armStall();
    for (;;) {
      const { done, value } = await reader.read();
      if (!this.current) return {};
      if (done) return {};
      this.armStall();
      this.samples.push([performance.now(), value.length]);
      for (const box of splitter.push(value)) this.take(box);
      this.pump();
    }
  }

  /** A response that stops sending is aborted, so the player connects again. */
  armStall() {
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => this.abort.abort(), STALL_MS);
  }

  /** A new MediaSource on the video, with a SourceBuffer for `mime`. */
  async open(mime) {
    const MS = mediaSourceClass();
    const ms = new MS();
    this.ms = ms;
    const opened = new Promise((resolve) => ms.addEventListener('sourceopen', resolve, { once: true }));
    this.url = URL.createObjectURL(ms);
    this.video.src = this.url;
    await opened;
    if (!this.current) return;
    const sb = ms.addSourceBuffer(mime);
    sb.mode = 'segments';
    sb.addEventListener('updateend', () => this.updated());
    sb.addEventListener('error', () => this.current && this.player.failed());
    this.sb = sb;
  }

  /** Notes what a box says (timescale, keyframes) and queues it. */
  take(box) {
    if (box.type === 'prft') {
      // Read, not appended: it says when lookout had the next frame.
      const ref = this.timescale && referenceTime(box.bytes, { body: 8, end: box.bytes.length });
      if (ref) {
        this.clock.push([ref.mediaTime / this.timescale, ref.wallMs]);
        if (this.clock.length > 300) this.clock.shift();
      }
      return;
    }
    if (box.type === 'moov') this.timescale = timescaleOf(box.bytes, { body: 8, end: box.bytes.length });
    if (box.type === 'moof' && this.timescale) {
      const info = fragmentInfo(box.bytes, { body: 8, end: box.bytes.length });
      if (info?.keyframe) this.keyframes.push(info.time / this.timescale);
    }
    this.queue.push(box.bytes);
  }

  updated() {
    if (!this.current) return;
    if (this.playingSince === null && this.video.buffered.length) {
      this.playingSince = performance.now();
      this.video.play().catch(() => {
        // Autoplay of a muted video is allowed; a refusal leaves it paused.
      });
    }
    this.keepLive();
    this.pump();
  }

  /** Appends what is queued (all of it in one go), or trims the buffer first. */
  pump() {
    const { sb, ms } = this;
    if (!sb || sb.updating || ms.readyState !== 'open' || !this.current) return;
    if (this.trim()) return;
    if (!this.queue.length) return;
    let data = this.queue[0];
    if (this.queue.length > 1) {
      const total = this.queue.reduce((n, q) => n + q.length, 0);
      data = new Uint8Array(total);
      let at = 0;
      for (const q of this.queue) {
        data.set(q, at);
        at += q.length;
      }
    }
    this.queue = [];
    try {
      sb.appendBuffer(data);
    } catch {
      // Full (QuotaExceededError) or the source went away: start afresh.
      this.player.failed();
    }
  }

  /**
   * Removes what lies before the newest keyframe at or before the playhead;
   * true when a removal is under way (updateend pumps again).
   */
  trim() {
    const { sb, video } = this;
    const t = video.currentTime;
    let cut = null;
    while (this.keyframes.length > 1 && this.keyframes[1] <= t) cut = this.keyframes.shift();
    if (cut === null || !sb.buffered.length) return false;
    // this.keyframes[0] is now the newest keyframe at or before the playhead.
    const upTo = this.keyframes[0];
    const start = sb.buffered.start(0);
    if (upTo - start < 0.05) return false;
    try {
      sb.remove(start, upTo);
      return true;
    } catch {
      return false;
    }
  }

  /** Jumps to the live edge when playback has fallen behind (or sits before the first frame). */
  keepLive() {
    if (!this.current) return;
    const b = this.video.buffered;
    if (!b.length) return;
    const end = b.end(b.length - 1);
    const t = this.video.currentTime;
    const behind = end - t;
    if (behind > MAX_LATENCY_S || t < b.start(0)) {
      this.video.currentTime = Math.max(b.start(b.length - 1), end - JUMP_TO_S);
      this.video.playbackRate = 1;
    } else if (behind > CATCH_UP_ABOVE_S) {
      this.video.playbackRate = CATCH_UP_RATE;
    } else if (behind < CAUGHT_UP_BELOW_S) {
      this.video.playbackRate = 1;
    }
    if (this.video.paused && this.playingSince !== null) this.video.play().catch(() => {});
  }
}
