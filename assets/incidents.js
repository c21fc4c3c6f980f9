// The camera's incidents (one motion episode each, as notifications count
// them): one card per incident instead of the six raw events a person
// walking through makes. A paged live list (paged-list.js) of
// /api/incidents, kept current by the camera's event feed:
//
//   motion      a new card (its SSE id is the incident's id)
//   person      the incident under way becomes a person one, with its frame
//   motion_end  the incident under way gets its duration
//   clip        the clip of the incidents that named it is saved (or failed)
//   notify      the incident's notified / snoozed / merged tag
//
// What the list says and what the feed says may arrive in either order (a
// reload after a gap, a feed faster than the fetch), so every update is a
// merge that only moves forward: motion to person, no duration to one, no
// tag to one, clip not yet saved to saved. Order then does not matter.

import { h, formatTime, formatSeconds } from './util.js';
import { PagedList } from './paged-list.js';
import { getJSON } from './api.js';

const PAGE = 20;
// The feed's `motion` can reach the page a moment before the incident is in
// the store (both follow the same event): its thumbnail is asked again.
const THUMB_RETRIES = 3;
const THUMB_RETRY_MS = 1000;

/** The file name at the end of a URL (`/cams/yard/clips/motion-1.mkv` → `motion-1.mkv`). */
function lastSegment(url) {
  if (typeof url !== 'string') return '';
  const last = url.slice(url.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

const NOTIFIED = {
  sent: { text: 'notified', title: 'a notification was sent' },
  snoozed: { text: 'snoozed', title: 'no notification: the camera was snoozed' },
  merged: { text: 'merged', title: 'part of the notification of an incident just before' },
};

/** `a` and `b` (two views of one incident) merged, each field as far on as either has it. */
export function mergeIncident(a, b) {
  if (!a) return { ...b };
  const m = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v !== null && v !== undefined && (m[k] === null || m[k] === undefined)) m[k] = v;
  }
  if (a.kind === 'person' || b.kind === 'person') {
    m.kind = 'person';
    // The person's frame, from whichever knows it.
    m.personSnapshot = a.personSnapshot ?? b.personSnapshot ?? null;
  }
  const states = [a.clipState, b.clipState];
  m.clipState = states.includes('failed') ? 'failed' : states.includes('saved') ? 'saved' : null;
  if (Array.isArray(b.zones) && b.zones.length > (m.zones?.length ?? 0)) m.zones = b.zones;
  return m;
}

/** An incident of /api/incidents, keyed for the list. */
function listed(inc) {
  return { ...inc, name: String(inc.id) };
}

export class Incidents extends PagedList {
  /**
   * `camera`: its name, or null for the one camera of the root routes (the
   * list is not filtered then). `onNew(incident)`: a new incident came live.
   */
  constructor({ camera = null, onNew = () => {} } = {}) {
    super({ ids: 'incidents', path: '/api/incidents', field: 'incidents', noun: 'incident', pageSize: PAGE, time: (i) => i.start_ts });
    this.camera = camera;
    this.onNew = onNew;
    // id -> what is known of each incident, from the list and the feed.
    this.known = new Map();
  }

  params() {
    return this.camera ? { camera: this.camera } : {};
  }

  /** One page (its cursor is `next`), each incident merged with what the feed said. */
  async fetchPage(before) {
    const page = await getJSON(`${this.path}?${this.query(before)}`);
    const items = (page.incidents || []).map((i) => this.absorb(listed(i)));
    return { items, nextBefore: page.next ?? null };
  }

  /** Reloads, then redraws the cards the fresh page told more about. */
  async reload() {
    await super.reload();
    if (this.closed) return;
    for (const id of this.cards.keys()) this.redraw(Number(id));
  }

  /** Merges `inc` into what is known; answers the merged incident. */
  absorb(inc) {
    const merged = mergeIncident(this.known.get(inc.id), inc);
    this.known.set(inc.id, merged);
    return merged;
  }

  /** The incident shown newest that is still under way, if any. */
  current() {
    let found = null;
    for (const inc of this.known.values()) {
      if (inc.duration_s === null || inc.duration_s === undefined) {
        if (!found || inc.id > found.id) found = inc;
      }
    }
    return found;
  }

  /** The newest incident id known, or null. */
  newest() {
    let id = null;
    for (const k of this.known.keys()) if (id === null || k > id) id = k;
    return id;
  }

  /** Applies `fields` to incident `id` and redraws its card. */
  patch(id, fields) {
    if (!this.known.has(id)) return;
    this.absorb({ id, ...fields });
    this.redraw(id);
  }

  /** Draws incident `id`'s card again if what it shows changed. */
  redraw(id) {
    const old = this.cards.get(String(id));
    const inc = this.known.get(id);
    if (!old || !inc || old.dataset.sig === signature(inc)) return;
    const card = this.card(inc);
    this.cards.set(String(id), card);
    old.replaceWith(card);
  }

  // ---- the feed ---------------------------------------------------------

  /** `motion`, with its id: a new incident. */
  motion(d, id) {
    if (!Number.isFinite(id) || this.closed) return;
    const fresh = !this.known.has(id);
    const inc = this.absorb({
      id, name: String(id), camera: d.camera ?? this.camera, start_ts: d.ts, kind: 'motion',
      zones: Array.isArray(d.zones) ? d.zones : [], notified: null,
      clip: typeof d.clip === 'string' ? d.clip : null,
      duration_s: null, snapshot: typeof d.snapshot === 'string' ? d.snapshot : null,
    });
    this.added(inc);
    if (fresh) this.onNew(inc);
  }

  /** `person`: the incident under way saw a person. */
  person(d) {
    const inc = this.current();
    if (inc) this.patch(inc.id, { kind: 'person', personSnapshot: typeof d.snapshot === 'string' ? d.snapshot : null });
  }

  /** `motion_end`: the incident under way (or the one recording its clip) is over. */
  motionEnd(d) {
    const inc = this.byClip(d.clip) ?? this.current();
    if (!inc) return;
    const fields = { duration_s: Number.isFinite(d.duration_s) ? d.duration_s : 0 };
    if (d.person === true) fields.kind = 'person';
    this.patch(inc.id, fields);
  }

  /** `clip`: saved (its listing entry) or failed; for the incidents that named it. */
  clipSaved(d) {
    for (const inc of this.withClip(d.url ?? d.name)) {
      this.patch(inc.id, { clipState: d.ok === false ? 'failed' : 'saved' });
    }
  }

  /** `notify`: what became of an incident. */
  notified(d) {
    if (Number.isFinite(d.incident) && typeof d.status === 'string') this.patch(d.incident, { notified: d.status });
  }

  /**
   * The incidents whose clip has this URL or file name: one, or several
   * when an episode began while the clip of the one before was still
   * recording its post-roll (they share that clip).
   */
  withClip(urlOrName) {
    const name = lastSegment(urlOrName);
    if (!name) return [];
    return [...this.known.values()].filter((inc) => inc.clip && lastSegment(inc.clip) === name);
  }

  /** The newest incident with that clip, or null. */
  byClip(urlOrName) {
    return this.withClip(urlOrName).reduce((newest, inc) => (!newest || inc.id > newest.id ? inc : newest), null);
  }

  // ---- the card -----------------------------------------------------------

  card(inc) {
    const person = inc.kind === 'person';
    const { thumb, full } = pictures(inc);
    const when = formatTime(inc.start_ts);
    let picture;
    if (thumb) {
      const img = h('img', { alt: `${inc.kind} at ${when}`, loading: 'lazy', width: 160, height: 90 });
      loadThumb(img, thumb);
      picture = h('a', { href: full, target: '_blank', rel: 'noopener', class: 'incident-thumb', title: 'open the picture' }, img);
    } else {
      picture = h('span', { class: 'incident-thumb', title: 'no picture' });
    }
    const over = Number.isFinite(inc.duration_s);
    const tag = NOTIFIED[inc.notified];
    return h('li', {
      class: `incident incident-${person ? 'person' : 'motion'}`,
      dataset: { id: String(inc.id), kind: inc.kind, notified: inc.notified ?? '', sig: signature(inc) },
    },
    picture,
    h('div', { class: 'incident-body' },
      h('div', { class: 'incident-head' },
        h('span', { class: `badge ${person ? 'badge-person' : 'badge-motion'}` }, person ? 'person' : 'motion'),
        h('time', { datetime: new Date(inc.start_ts * 1000).toISOString() }, when),
        h('span', { class: over ? 'incident-duration' : 'incident-duration under-way' }, over ? formatSeconds(inc.duration_s) : 'under way'),
        tag ? h('span', { class: `tag tag-${inc.notified}`, title: tag.title }, tag.text) : null),
      inc.zones?.length ? h('span', { class: 'incident-zones muted small' }, `zones: ${inc.zones.join(', ')}`) : null,
      clipButton(inc)));
  }
}

/** What a card shows, to tell whether it must be drawn again. */
function signature(inc) {
  return JSON.stringify([inc.kind, inc.duration_s ?? null, inc.notified ?? null, inc.clipState ?? null, inc.zones ?? [], inc.personSnapshot ?? null]);
}

/**
 * The card's thumbnail and full picture. An incident that came live names
 * its frames as snapshots (the motion's, then the person's), saved before
 * the event was sent and never changed under their URL: the same pictures
 * the store keeps for it, which it may not have written yet when the event
 * arrives. Else the incident's own picture, asked for with its kind, since
 * the store swaps it for the person's frame once (the browser keeps each
 * for a day under its URL).
 */
function pictures(inc) {
  if (inc.kind === 'person' && inc.personSnapshot) {
    return { thumb: `${inc.personSnapshot}/thumb`, full: inc.personSnapshot };
  }
  if (inc.kind !== 'person' && inc.snapshot) {
    return { thumb: `${inc.snapshot}/thumb`, full: inc.snapshot };
  }
  const v = `?v=${inc.kind === 'person' ? 'person' : 'motion'}`;
  // Listed without a picture: none to ask for (the grey box stays).
  if (inc.thumb === null && inc.picture === null) return { thumb: null, full: null };
  return {
    thumb: `${inc.thumb ?? `/api/incidents/${inc.id}/thumb.jpg`}${v}`,
    full: `${inc.picture ?? `/api/incidents/${inc.id}/picture.jpg`}${v}`,
  };
}

/** Sets `img` to `url`, asking again a few times should it fail (then hidden: the grey box stays). */
function loadThumb(img, url) {
  let tries = 0;
  img.addEventListener('error', () => {
    if (tries++ >= THUMB_RETRIES || !img.isConnected) {
      img.hidden = true;
      return;
    }
    setTimeout(() => { img.src = `${url}${url.includes('?') ? '&' : '?'}try=${tries}`; }, THUMB_RETRY_MS);
  });
  img.src = url;
}

/**
 * "Play clip": enabled once the clip is saved, or once the incident is over
 * (its clip may still be recording the post-roll, or the next incident if
 * that began meanwhile: the player then waits for it to be saved);
 * disabled while the incident is under way; none without a clip or when it
 * failed.
 */
function clipButton(inc) {
  if (!inc.clip) return null;
  if (inc.clipState === 'failed') return h('span', { class: 'muted small' }, 'clip failed');
  const saved = inc.clipState === 'saved';
  const ready = saved || Number.isFinite(inc.duration_s);
  return h('button', {
    type: 'button',
    class: 'secondary small-btn play-clip',
    disabled: !ready,
    title: ready ? null : 'the clip is still recording',
    dataset: { clip: inc.clip, pending: String(!saved) },
  }, 'Play clip');
}
