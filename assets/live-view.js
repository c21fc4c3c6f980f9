// The camera view's live picture: the camera's own video through Media
// Source Extensions (live.js) where the camera is an RTSP one and the
// browser plays its codec, else the MJPEG <img> (stream.js).
//
// A quality switch picks "Main" (the camera's main stream), "Substream" (its
// detect stream, when it has one: less bandwidth on a phone) or "MJPEG"
// (what every browser shows); the choice is kept per camera in this browser.
// Without a choice: Main when this browser plays it, else MJPEG, with the
// reason in small text. The line beside the switch shows what the video
// stream is: "1280x720 · 1.7 Mbit/s · H.264".

import { $ } from './util.js';
import { getJSON } from './api.js';
import { LiveStream } from './stream.js';
import { LivePlayer, canPlay, mimeOf } from './live.js';

const CHOICE_KEY = 'lookout.quality:';
// While /cams does not know a stream's codec yet (the camera is starting),
// it is read again, at first this often, then less, at most this many times.
const CODECS_RETRY_MS = 1000;
const CODECS_RETRY_MAX_MS = 30000;
const CODECS_TRIES = 12;

/** The quality chosen for the camera at `key`, or null. */
function readChoice(key) {
  try {
    const v = localStorage.getItem(CHOICE_KEY + key);
    return v === 'main' || v === 'sub' || v === 'mjpeg' ? v : null;
  } catch {
    return null;
  }
}

function writeChoice(key, v) {
  try {
    localStorage.setItem(CHOICE_KEY + key, v);
  } catch {
    // Not kept: the default next time.
  }
}

/** "1.7 Mbit/s", "350 kbit/s". */
function formatRate(bps) {
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  return `${Math.round(bps / 1e3)} kbit/s`;
}

export class LiveView {
  /**
   * `base`: the camera's route prefix ('' at the root routes); `name`: its
   * name, or null for the first camera at the root routes. `onState(state)`
   * as LiveStream's ('connecting' | 'live' | 'retrying' | 'paused');
   * `onSize(w, h)` when the video's size is known.
   */
  constructor({ base = '', name = null, onState = () => {}, onSize = () => {} } = {}) {
    this.base = base;
    this.name = name;
    this.key = base || '/';
    this.onState = onState;
    this.onSize = onSize;
    this.img = $('stream');
    this.video = $('live-video');
    this.switch = $('quality');
    this.info = $('live-info');
    this.note = $('live-note');
    this.wanted = false; // on show, so something should stream
    this.mode = null; // 'main' | 'sub' | 'mjpeg', null until decided
    this.cam = null; // this camera's entry of /cams
    this.mjpeg = null;
    this.player = null;
    this.closed = false;
    this.codecsTimer = null;
    this.codecsTries = 0;
    // Why the video stream did not play (the player found out), for the note.
    this.fallback = null;
    this.listening = new AbortController();

    this.info.textContent = '';
    this.showNote('');
    this.switch.hidden = true;
    for (const b of this.buttons()) {
      b.addEventListener('click', () => this.choose(b.dataset.quality), { signal: this.listening.signal });
    }
    // A stored MJPEG choice needs no answer from the server to start.
    if (readChoice(this.key) === 'mjpeg') this.use('mjpeg');
    this.loadCamera();
  }

  buttons() {
    return [...this.switch.querySelectorAll('button[data-quality]')];
  }

  start() {
    this.wanted = true;
    this.active()?.start();
  }

  pause() {
    this.wanted = false;
    const a = this.active();
    if (a) a.pause();
    else this.onState('paused');
  }

  restart() {
    if (this.wanted) this.active()?.restart();
  }

  destroy() {
    this.closed = true;
    this.listening.abort();
    clearTimeout(this.codecsTimer);
    this.mjpeg?.destroy();
    this.player?.destroy();
    this.mjpeg = null;
    this.player = null;
    this.video.hidden = true;
    this.img.hidden = false;
  }

  active() {
    return this.mode === 'mjpeg' ? this.mjpeg : this.player;
  }

  /** Reads this camera's entry of /cams: whether it has a live.mp4, and its codecs. */
  async loadCamera() {
    let cam = null;
    try {
      const list = await getJSON('/cams');
      const cams = Array.isArray(list?.cameras) ? list.cameras : [];
      cam = this.name === null ? cams[0] : cams.find((c) => c.name === this.name);
    } catch {
      // Unreachable or an older server: MJPEG, which retries by itself.
    }
    if (this.closed) return;
    this.cam = cam ?? null;
    this.renderSwitch();
    if (this.mode === null) this.use(this.defaultMode());
    const codecs = this.cam?.live_codecs;
    // `detect` is absent for a camera without a detect stream, null while
    // it is not known yet.
    const pending = !codecs?.main || (codecs && 'detect' in codecs && !codecs.detect);
    if (this.cam?.live_url && pending && this.codecsTries < CODECS_TRIES) {
      const wait = Math.min(CODECS_RETRY_MAX_MS, CODECS_RETRY_MS * 2 ** this.codecsTries);
      this.codecsTries++;
      this.codecsTimer = setTimeout(() => this.loadCamera(), wait);
    }
  }

  userChoseMjpeg() {
    return readChoice(this.key) === 'mjpeg';
  }

  /** The codec string of 'main' or 'sub', when known. */
  codecOf(quality) {
    const codecs = this.cam?.live_codecs;
    return (quality === 'sub' ? codecs?.detect : codecs?.main) || null;
  }

  /** Whether 'main' or 'sub' can play here: `{ ok }` or `{ ok: false, reason }`. */
  playable(quality) {
    if (!this.cam?.live_url) return { ok: false, reason: 'this camera sends no video stream' };
    const codec = this.codecOf(quality);
    // Not known yet: the player reads it from the response and says.
    return codec ? canPlay(mimeOf(codec)) : { ok: true };
  }

  /** The stored choice when it can play, else Main when it can, else MJPEG. */
  defaultMode() {
    if (!this.cam?.live_url) return 'mjpeg';
    const stored = readChoice(this.key);
    if (stored === 'mjpeg') return 'mjpeg';
    const wanted = stored ?? 'main';
    if (this.playable(wanted).ok) return wanted;
    return 'mjpeg';
  }

  /** The person picked a quality. */
  choose(quality) {
    if (this.closed) return;
    writeChoice(this.key, quality);
    this.use(quality === 'mjpeg' || this.playable(quality).ok ? quality : 'mjpeg');
  }

  /** Shows the switch for a camera with a live.mp4: Substream only when it has one. */
  renderSwitch() {
    const live = Boolean(this.cam?.live_url);
    this.switch.hidden = !live;
    if (!live) return;
    for (const b of this.buttons()) {
      const q = b.dataset.quality;
      if (q === 'sub') b.hidden = !this.codecOf('sub') && this.mode !== 'sub';
      if (q === 'main' || q === 'sub') {
        const p = this.playable(q);
        b.disabled = !p.ok;
        b.title = p.ok ? '' : p.reason;
      }
      b.setAttribute('aria-pressed', String(q === this.mode));
    }
  }

  showNote(text) {
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  /** Plays `mode` ('main', 'sub' or 'mjpeg') in place of what played before. */
  use(mode) {
    if (this.closed) return;
    this.mode = mode;
    this.player?.destroy();
    this.player = null;
    this.info.textContent = '';
    if (mode === 'mjpeg') {
      this.video.hidden = true;
      this.img.hidden = false;
      const why = this.cam?.live_url && !this.userChoseMjpeg() ? this.fallbackReason() : '';
      this.showNote(why);
      if (!this.mjpeg) this.mjpeg = new LiveStream(this.img, { path: `${this.base}/stream.jpg`, onState: this.onState });
      if (this.wanted) this.mjpeg.start();
      else this.onState('paused');
    } else {
      this.showNote('');
      this.mjpeg?.destroy();
      this.mjpeg = null;
      this.img.hidden = true;
      this.video.hidden = false;
      const url = `${this.base}/live.mp4${mode === 'sub' ? '?stream=detect' : ''}`;
      this.player = new LivePlayer(this.video, {
        url,
        onState: (s, detail) => this.playerState(s, detail),
        onInfo: (i) => this.showInfo(i),
      });
      if (this.wanted) this.player.start();
      else this.onState('paused');
    }
    this.renderSwitch();
  }

  /** Why the view shows MJPEG although the camera has a video stream. */
  fallbackReason() {
    const wanted = readChoice(this.key) ?? 'main';
    const p = this.playable(wanted === 'sub' ? 'sub' : 'main');
    if (p.ok) return this.fallback ?? '';
    return `Showing MJPEG: ${p.reason}.`;
  }

  playerState(s, detail) {
    if (s === 'unsupported' || s === 'novideo') {
      // Nothing more to try with this stream: MJPEG, saying why.
      this.fallback = `Showing MJPEG: ${detail}.`;
      this.use('mjpeg');
      this.showNote(this.fallback);
      return;
    }
    const word = { playing: 'live', connecting: 'connecting', reconnecting: 'retrying', paused: 'paused' }[s] ?? s;
    this.onState(word);
  }

  showInfo({ width, height, bitrate, codec, delayMs }) {
    if (width && height) this.onSize(width, height);
    const parts = [];
    if (width && height) parts.push(`${width}x${height}`);
    if (bitrate !== null && bitrate !== undefined) parts.push(formatRate(bitrate));
    if (codec) parts.push(codec);
    // How far behind lookout the picture is (the camera's own delay comes on top).
    if (delayMs !== null && delayMs !== undefined) parts.push(`${(Math.max(0, delayMs) / 1000).toFixed(1)} s behind`);
    this.info.textContent = parts.join(' · ');
    this.info.dataset.delayMs = delayMs ?? '';
  }
}
