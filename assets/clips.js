// The camera's motion clips, above the snapshots in the gallery view: a
// paged live list (paged-list.js) kept in sync with other dashboards by
// `clip` and `clip_deleted` events. A clip opens in the player (player.js).

import { h, formatTime, formatBytes } from './util.js';
import { PagedList } from './paged-list.js';
import { player, formatClipTime } from './player.js';

const PAGE = 12;

/** "12.8 s", or "2:05" from a minute on. */
function formatDuration(s) {
  if (!Number.isFinite(s)) return '';
  if (s < 60) return `${s.toFixed(1)} s`;
  return formatClipTime(s * 1000).replace(/\.\d$/, '');
}

/**
 * The clip an event names, for a "Play clip" button in Recent events:
 * `{url, pending}` or null. A `motion` or `motion_end` event names the clip
 * while it is still being recorded (`pending`: the player waits for it).
 */
export function clipOfEvent(kind, d) {
  if (!d) return null;
  if ((kind === 'motion' || kind === 'motion_end') && typeof d.clip === 'string') return { url: d.clip, pending: true };
  if (kind === 'clip' && d.ok !== false && typeof d.url === 'string') return { url: d.url, pending: false };
  return null;
}

/** The "Play clip" button of an event (clicks are handled by the camera view), or null. */
export function playClipButton(kind, d) {
  const clip = clipOfEvent(kind, d);
  if (!clip) return null;
  return h('button', {
    type: 'button',
    class: 'secondary small-btn play-clip',
    dataset: { clip: clip.url, pending: String(clip.pending) },
  }, 'Play clip');
}

export class Clips extends PagedList {
  /** `base`: the camera's route prefix, as for the gallery. */
  constructor({ base = '' } = {}) {
    super({ ids: 'clips', path: `${base}/clips`, field: 'clips', noun: 'clip', pageSize: PAGE, time: (c) => c.start_ts });
  }

  /** A `clip` event names a saved clip, or one that failed (listed nowhere). */
  accepts(clip) {
    return clip?.ok !== false && Boolean(clip?.name);
  }

  card(clip) {
    const url = this.urlOf(clip);
    const thumb = clip.thumb || `${url}/thumb`;
    const when = formatTime(clip.start_ts);
    const title = `Clip ${when} · ${formatDuration(clip.duration_s)}`;
    const open = () => player().open({ url, name: clip.name, title });
    const img = h('img', {
      src: thumb, alt: '', loading: 'lazy', width: 320, height: 180,
      // No thumbnail (yet): the grey box with the play sign stays.
      onerror: () => { img.hidden = true; },
    });
    const poster = h('button', { type: 'button', class: 'clip-poster', 'aria-label': `Play ${title}` },
      img, h('span', { class: 'clip-play', 'aria-hidden': 'true' }, '▶'),
      h('span', { class: 'clip-duration' }, formatDuration(clip.duration_s)));
    poster.addEventListener('click', open);
    const play = h('button', { type: 'button', class: 'small-btn' }, 'Play');
    play.addEventListener('click', open);
    const remove = h('button', { type: 'button', class: 'danger small-btn' }, 'Delete');
    remove.addEventListener('click', () => this.delete(clip.name));
    return h('li', { class: 'clip', dataset: { name: clip.name } },
      poster,
      h('div', { class: 'snap-meta' },
        h('time', { datetime: new Date(clip.start_ts * 1000).toISOString() }, when),
        h('span', { class: 'muted small' }, `${clip.frames} frames · ${formatBytes(clip.bytes)}`)),
      h('div', { class: 'snap-actions' },
        play,
        h('a', { href: url, download: clip.name, class: 'btn-link' }, 'Download'),
        remove));
  }
}
