// One camera's full view: live picture, controls, motion graph, incidents
// (with the raw events one tap away) and gallery (the day's recordings, the
// clips, the snapshots), all on that camera's routes.
//
// The page has one set of these elements; a CameraView owns them while it
// lives. Switching camera destroys the view and builds a new one, so nothing
// of the old camera (its stream, control socket, event feed, timers, answers
// still on the way) can reach the new one's screen.

import { $, setPill, formatScore } from './util.js';
import { getJSON, postJSON } from './api.js';
import { Control, NotConnected } from './ws.js';
import { EventFeed } from './events.js';
import { LiveView } from './live-view.js';
import { LevelGraph } from './graph.js';
import { RecentEvents } from './recent.js';
import { Incidents } from './incidents.js';
import { markSeen, setUnseen } from './unseen.js';
import { Gallery } from './gallery.js';
import { Clips } from './clips.js';
import { Recordings } from './recordings.js';
import { player, closePlayer } from './player.js';
import { Overlay } from './overlay.js';
import { Zones } from './zones.js';
import { ZoneEditor } from './zone-editor.js';
import { Tuner } from './tuner.js';
import { SnoozeCard, snoozeText } from './snooze.js';
import { toast } from './toast.js';

const STATUS_EVERY_MS = 10000;
// Right after the stream comes up, the camera's frame rate and the viewer
// count are still being measured (the rate needs a second of frames): ask
// again this often until they are live, so the line never shows "0 fps".
const STATUS_SETTLE_MS = 1000;
// A running source with no frame for this long is as good as offline.
const STALE_FRAME_MS = 10000;
// Which list the events card shows, kept across reloads: 'incidents' or 'raw'.
const EVENTS_VIEW_KEY = 'lookout.eventsView';

/** The events card's list as last chosen: 'incidents' (the default) or 'raw'. */
function readEventsView() {
  try {
    return localStorage.getItem(EVENTS_VIEW_KEY) === 'raw' ? 'raw' : 'incidents';
  } catch {
    return 'incidents';
  }
}

export class CameraView {
  /**
   * `base` is the camera's route prefix: '' for the root routes (one camera,
   * or an older server), else its `base` from /cams (`/cams/garage`). Every
   * request of the view goes under it, its event feed included
   * (`base/events` carries only this camera). `name`: the camera's name,
   * or null for the one camera of the root routes.
   */
  constructor({ base = '', name = null } = {}) {
    this.base = base;
    this.name = name;
    // Incidents that came while the page was hidden: the title counts them.
    this.unseenHidden = 0;
    this.closed = false;
    // Takes every listener this view put on the page's elements off again.
    this.listening = new AbortController();
    this.statusTimer = null;
    this.streamLive = false;
    // Settings changes sent but not yet answered; while there are any (or a
    // finger is on the slider) config updates from the server must not yank
    // the slider or the switches back to an older value.
    this.pendingSets = 0;
    this.sliding = false;

    this.slider = $('threshold');
    this.sliderValue = $('threshold-value');
    this.counter = $('trigger-count');
    this.cameraState = $('camera-state');
    this.sourceInfo = $('source-info');
    this.levelValue = $('level-value');
    this.recordToggle = $('record-continuous');

    // Nothing of the camera shown before may stay on screen.
    this.counter.textContent = '–';
    this.recordToggle.checked = false;
    this.sourceInfo.textContent = '';
    this.levelValue.textContent = '';
    this.setCamera('starting');

    this.graph = new LevelGraph($('level-graph'));
    this.recent = new RecentEvents();
    this.recent.peopleOnly = $('events-people').checked;
    this.recent.render();
    this.incidents = new Incidents({ camera: name, onNew: (inc) => this.newIncident(inc) });
    this.gallery = new Gallery({ base, trigger: $('gallery-people').checked ? 'person' : '' });
    this.clips = new Clips({ base });
    this.recordings = new Recordings({ base, name });
    // Mask and zone outlines, their editor and the tuner's boxes share one
    // overlay on the picture; each redraws when the picture changes size.
    this.overlay = new Overlay($('zones-overlay'), $('stream'), {
      onChange: () => { this.zones?.render(); this.editor?.render(); this.tuner?.render(); },
    });
    this.zones = new Zones(this.overlay, $('zones-show'), { key: base || '/' });
    this.editor = new ZoneEditor(this.overlay, this.zones, { base });
    this.tuner = new Tuner(this.overlay);
    this.snooze = new SnoozeCard();
    // The live picture: the camera's video (MSE) or MJPEG, as live-view.js decides.
    this.stream = new LiveView({
      base,
      name,
      onSize: (w, h) => this.overlay.adopt(w, h),
      onState: (s) => {
        setPill($('conn-stream'), s === 'live' ? 'ok' : s === 'paused' ? 'idle' : 'bad', s);
        const wasLive = this.streamLive;
        this.streamLive = s === 'live';
        // The first frame is here: show its size, rate and our own viewer now.
        if (this.streamLive && !wasLive) this.scheduleStatus(0);
      },
    });
    this.control = new Control(`${base}/control`, {
      onState: (s) => setPill($('conn-control'), s === 'open' ? 'ok' : 'bad', s === 'open' ? 'connected' : s),
    });
    this.feed = new EventFeed(`${base}/events`, {
      onState: (s) => setPill($('conn-events'), s === 'open' ? 'ok' : 'bad', s === 'open' ? 'connected' : s),
      // After a gap the server may have restarted: the stream is probably dead too.
      onReopen: () => { this.stream.restart(); this.resync({ gallery: true }); },
      onFirstOpen: () => this.resync(),
    });

    this.showEvents(readEventsView());
    this.bindControls();
    this.bindFeed();
    this.showThreshold(this.slider.value);
    this.feed.start();
    this.control.connect();
    this.resync();
    this.scheduleStatus(STATUS_EVERY_MS);
  }

  /** 'live' or 'gallery': shows that part; the stream runs only while seen. */
  show(view) {
    const gal = view === 'gallery';
    $('live-view').hidden = gal;
    $('gallery-view').hidden = !gal;
    this.view = view;
    this.visibility();
    if (gal) {
      this.recordings.show();
      this.clips.show();
      this.gallery.show();
    } else {
      this.recordings.hide();
    }
  }

  /**
   * Starts or pauses the stream for the page's visibility: a stream nobody
   * looks at costs bandwidth and one of the browser's few connections to
   * this host.
   */
  visibility() {
    if (this.view === 'gallery' || document.hidden) this.stream.pause();
    else this.stream.start();
    this.recordings.visibility();
    if (!document.hidden) this.seeIncidents();
  }

  // ---- incidents: the events card, and which of them were seen ---------------

  /** 'incidents' or 'raw': which list the events card shows. */
  showEvents(which) {
    const raw = which === 'raw';
    $('incidents-panel').hidden = raw;
    $('raw-panel').hidden = !raw;
    $('show-incidents').setAttribute('aria-pressed', String(!raw));
    $('show-raw').setAttribute('aria-pressed', String(raw));
    try {
      localStorage.setItem(EVENTS_VIEW_KEY, raw ? 'raw' : 'incidents');
    } catch {
      // Not kept: the card opens on incidents next time.
    }
  }

  /** Everything this view lists has been seen (the page is on show). */
  seeIncidents() {
    if (this.closed || document.hidden) return;
    const id = this.incidents.newest();
    if (id !== null) markSeen(this.name ?? this.incidents.known.get(id)?.camera, id);
    this.unseenHidden = 0;
    setUnseen(0);
  }

  /** A new incident came live: seen now, or counted in the title until the page is looked at. */
  newIncident(inc) {
    if (!document.hidden) {
      markSeen(this.name ?? inc.camera, inc.id);
      return;
    }
    this.unseenHidden++;
    setUnseen(this.unseenHidden);
  }

  /** Closes the stream, the socket and the feed, and lets go of the page. */
  destroy() {
    this.closed = true;
    this.listening.abort();
    clearTimeout(this.statusTimer);
    this.stream.destroy();
    this.control.close();
    this.feed.close();
    this.graph.destroy();
    this.gallery.destroy();
    this.clips.destroy();
    this.recordings.destroy();
    this.incidents.destroy();
    setUnseen(0);
    closePlayer();
    this.editor.destroy();
    this.zones.destroy();
    this.tuner.destroy();
    this.overlay.destroy();
    this.snooze.destroy();
  }

  // ---- counter, threshold and camera state -------------------------------

  setCount(n) {
    if (Number.isFinite(n)) this.counter.textContent = String(n);
  }

  showThreshold(v) {
    this.sliderValue.value = String(v);
    this.sliderValue.textContent = String(v);
    this.graph.setThreshold(Number(v));
  }

  applyConfig(cfg) {
    if (Number.isFinite(cfg.threshold) && this.pendingSets === 0 && !this.sliding) {
      this.slider.value = String(cfg.threshold);
      this.showThreshold(cfg.threshold);
    }
    if (typeof cfg.record === 'string' && this.pendingSets === 0) {
      this.recordToggle.checked = cfg.record === 'continuous';
    }
    this.setCount(cfg.trigger_count);
    this.zones.apply(cfg);
    this.recordings.config(cfg);
  }

  setCamera(state, detail = '') {
    this.cameraState.dataset.state = state;
    const text = {
      online: 'camera online',
      starting: 'camera starting…',
      offline: 'camera offline',
    }[state];
    this.cameraState.textContent = detail ? `${text}: ${detail}` : text;
  }

  applyStatus(st) {
    this.setCount(st.trigger_count);
    this.snooze.apply(st.notify);
    // The filters mean something only where the person check runs.
    const people = Boolean(st.person?.available);
    $('events-people-label').hidden = !people;
    $('gallery-people-label').hidden = !people;
    const src = st.source || {};
    if (src.state === 'running') {
      const age = src.last_frame_age_ms;
      if (Number.isFinite(age) && age > STALE_FRAME_MS) this.setCamera('offline', `no picture for ${Math.round(age / 1000)} s`);
      else this.setCamera('online');
    } else if (src.state === 'failed' || src.state === 'reconnecting' || (src.state === 'starting' && src.restarts > 0)) {
      this.setCamera('offline', src.last_error || '');
    } else {
      this.setCamera('starting');
    }
    const parts = [];
    if (src.width && src.height) parts.push(`${src.width}×${src.height}`);
    if (Number.isFinite(src.fps)) parts.push(`${src.fps.toFixed(0)} fps`);
    if (Number.isFinite(st.viewers)) parts.push(`${st.viewers} viewer${st.viewers === 1 ? '' : 's'}`);
    if (st.version) parts.push(`lookout ${st.version}`);
    this.sourceInfo.textContent = parts.join(' · ');
  }

  /** Reads status again after `ms` (one pending read at a time). */
  scheduleStatus(ms) {
    clearTimeout(this.statusTimer);
    if (this.closed) return;
    this.statusTimer = setTimeout(() => this.refreshStatus(), ms);
  }

  /** True while the live view runs but status has not measured it yet. */
  settling(st) {
    const src = st.source || {};
    return this.streamLive && src.state === 'running' && !(src.fps > 0 && st.viewers > 0);
  }

  async refreshStatus() {
    let next = STATUS_EVERY_MS;
    try {
      const st = await getJSON(`${this.base}/status`);
      if (this.closed) return;
      this.applyStatus(st);
      if (this.settling(st)) next = STATUS_SETTLE_MS;
    } catch {
      // The server is unreachable: the connection pills already say so.
    }
    this.scheduleStatus(next);
  }

  /**
   * Refetches everything shown, after a start or (with `gallery`) a gap in the
   * event feed, when snapshot events may have been missed.
   */
  async resync({ gallery: withGallery = false } = {}) {
    const [cfg, status, history] = await Promise.allSettled([
      getJSON(`${this.base}/config`),
      getJSON(`${this.base}/status`),
      getJSON(`${this.base}/api/events?${this.historyQuery()}`),
    ]);
    if (this.closed) return;
    if (cfg.status === 'fulfilled') this.applyConfig(cfg.value);
    if (status.status === 'fulfilled') {
      this.applyStatus(status.value);
      if (this.settling(status.value)) this.scheduleStatus(STATUS_SETTLE_MS);
    }
    if (history.status === 'fulfilled') this.recent.load(history.value.events);
    this.loadIncidents();
    if (withGallery && this.gallery.loaded) this.gallery.reload();
    if (withGallery && this.clips.loaded) this.clips.reload();
  }

  /** Reads the incident list afresh (at start, and after a gap in the feed), then it counts as seen. */
  async loadIncidents() {
    await this.incidents.reload();
    this.seeIncidents();
  }

  /** The query of the recent events' history: all kinds, or person events only. */
  historyQuery() {
    const q = new URLSearchParams({ limit: '20' });
    if (this.recent.peopleOnly) q.set('kind', 'person');
    return q;
  }

  /** "People only" in Recent events: filter now, then fetch older person events. */
  async setPeopleOnly(on) {
    this.recent.setPeopleOnly(on);
    try {
      const page = await getJSON(`${this.base}/api/events?${this.historyQuery()}`);
      if (!this.closed && this.recent.peopleOnly === on) this.recent.load(page.events);
    } catch (e) {
      if (!this.closed) toast(`Could not load events: ${e.message}`, { kind: 'error' });
    }
  }

  // ---- commands ---------------------------------------------------------------

  /** Runs a button's command once at a time; aria-disabled keeps keyboard focus on it. */
  onButton(button, run) {
    button.addEventListener('click', async () => {
      if (button.getAttribute('aria-disabled') === 'true') return;
      button.setAttribute('aria-disabled', 'true');
      try {
        await run();
      } catch (e) {
        // A reply lost because the person switched camera is no news.
        if (this.closed) return;
        if (e instanceof NotConnected) {
          toast('Not connected to the camera: nothing was sent. Try again when "control" is connected.', { kind: 'error' });
        } else {
          toast(e.message, { kind: 'error' });
        }
      } finally {
        button.removeAttribute('aria-disabled');
      }
    }, { signal: this.listening.signal });
  }

  bindControls() {
    const { signal } = this.listening;
    this.onButton($('snap-btn'), async () => {
      const reply = await this.control.send({ cmd: 'snapshot_now' });
      if (reply.ok) {
        toast('Snapshot saved', { link: { href: reply.url || `${this.base}/${reply.saved}`, text: 'open' } });
      } else {
        toast(`Snapshot failed: ${reply.reason || reply.error || 'unknown error'}`, { kind: 'error' });
      }
    });

    this.onButton($('reset-btn'), async () => {
      const reply = await this.control.send({ cmd: 'reset' });
      if (reply.ok) {
        this.setCount(0);
        toast('Counter reset');
      } else {
        toast(`Reset failed: ${reply.reason || reply.error || 'unknown error'}`, { kind: 'error' });
      }
    });

    for (const b of this.snooze.buttons) {
      this.onButton(b, async () => {
        const reply = await this.command({ cmd: 'snooze', minutes: this.snooze.minutesOf(b) });
        if (!reply.ok) {
          toast(`Snooze failed: ${reply.error || reply.reason || 'unknown error'}`, { kind: 'error' });
          return;
        }
        this.snooze.set(reply.snoozed_until ?? null);
        toast(snoozeText(reply.snoozed_until ?? null) ? `Notifications ${snoozeText(reply.snoozed_until)}` : 'Notifications back on');
      });
    }

    const slider = this.slider;
    slider.addEventListener('pointerdown', () => { this.sliding = true; }, { signal });
    slider.addEventListener('pointerup', () => { this.sliding = false; }, { signal });
    slider.addEventListener('pointercancel', () => { this.sliding = false; }, { signal });
    slider.addEventListener('input', () => this.showThreshold(slider.value), { signal });
    slider.addEventListener('change', () => {
      this.sliding = false;
      this.sendSetting({ threshold: Number(slider.value) }, 'Threshold');
    }, { signal });
    // Continuous recording on or off (the `record` setting).
    this.recordToggle.addEventListener('change', () => {
      this.sendSetting({ record: this.recordToggle.checked ? 'continuous' : 'events' }, 'Recording');
    }, { signal });

    $('events-people').addEventListener('change', (e) => this.setPeopleOnly(e.target.checked), { signal });
    $('gallery-people').addEventListener('change', (e) => this.gallery.setTrigger(e.target.checked ? 'person' : ''), { signal });

    // "Play clip" in the incidents and the raw events (incidents.js and
    // recent.js draw the buttons).
    for (const list of [$('events'), $('incidents-list')]) {
      list.addEventListener('click', (e) => {
        const b = e.target.closest('button.play-clip');
        if (b) player().open({ url: b.dataset.clip, pending: b.dataset.pending === 'true' });
      }, { signal });
    }
    $('show-incidents').addEventListener('click', () => this.showEvents('incidents'), { signal });
    $('show-raw').addEventListener('click', () => this.showEvents('raw'), { signal });
  }

  /**
   * Runs a command that is safe to repeat: over the socket when it is up,
   * else by POST (the server's reply either way).
   */
  command(cmd) {
    return this.control.connected ? this.control.send(cmd) : postJSON(`${this.base}/control`, cmd);
  }

  /**
   * Sends settings (`{threshold: 12}`, `{record: 'continuous'}`); `what`
   * names them in an error. Setting a value is idempotent, so unlike reset
   * and snapshot it may fall back to POST config when the socket is down.
   */
  async sendSetting(patch, what) {
    this.pendingSets++;
    let reply;
    try {
      reply = this.control.connected
        ? await this.control.send({ cmd: 'set', ...patch })
        : await postJSON(`${this.base}/config`, patch);
    } catch (e) {
      reply = { ok: false, error: e.message };
    } finally {
      this.pendingSets--;
    }
    if (this.closed) return;
    if (reply.ok) {
      this.applyConfig(reply);
    } else {
      toast(`${what} not saved: ${reply.error || reply.reason || 'unknown error'}`, { kind: 'error' });
      getJSON(`${this.base}/config`).then((cfg) => { if (!this.closed) this.applyConfig(cfg); }, () => {});
    }
  }

  // ---- events from the server ------------------------------------------------

  bindFeed() {
    const { recent, gallery, clips, graph, incidents } = this;
    this.feed
      .on('motion', (d, id) => { this.setCount(d.count); recent.add(id, 'motion', d); incidents.motion(d, id); })
      .on('motion_end', (d, id) => { this.setCount(d.count); recent.add(id, 'motion_end', d); incidents.motionEnd(d); })
      .on('person', (d, id) => { recent.add(id, 'person', d); incidents.person(d); })
      .on('reset', (d, id) => { this.setCount(0); recent.add(id, 'reset', d); })
      .on('snapshot', (d, id) => { gallery.added(d); recent.add(id, 'snapshot', d); })
      .on('snapshot_deleted', (d, id) => { gallery.removed(d.name); recent.add(id, 'snapshot_deleted', d); })
      .on('clip', (d, id) => { clips.added(d); player().saved(d); recent.add(id, 'clip', d); incidents.clipSaved(d); })
      .on('clip_deleted', (d, id) => { clips.removed(d.name); player().removed(d.name); recent.add(id, 'clip_deleted', d); })
      .on('config', (d, id) => { this.applyConfig(d); recent.add(id, 'config', d); })
      .on('snooze', (d, id) => { this.snooze.set(d.snoozed_until ?? null); recent.add(id, 'snooze', d); })
      .on('notify', (d, id) => { recent.add(id, 'notify', d); incidents.notified(d); })
      .on('source', (d, id) => {
        // The main stream beside a detect stream: the camera still shows.
        if (d.stream !== 'main') this.setCamera(d.up ? 'online' : 'offline', d.up ? '' : d.error || '');
        recent.add(id, 'source', d);
      })
      .on('level', (d) => {
        graph.add(d.ts, d.change);
        this.tuner.level(d);
        this.levelValue.textContent = `score ${formatScore(d.change)}${d.active ? ' · motion' : ''}`;
      });
  }
}
