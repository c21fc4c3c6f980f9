// The snapshot gallery: a paged live list (paged-list.js) of the camera's
// snapshots, kept in sync with other dashboards by `snapshot` and
// `snapshot_deleted` events, optionally of one trigger ("People only").

import { h, formatTime, formatBytes, thumbnail } from './util.js';
import { PagedList } from './paged-list.js';

const PAGE = 24;

export class Gallery extends PagedList {
  /**
   * `base` is the camera's route prefix ('' for the root routes, else e.g.
   * `/cams/garage`). The page's list belongs to one camera at a time: it
   * starts empty, and destroy() hands it over to the next.
   */
  constructor({ base = '', trigger = '' } = {}) {
    super({ ids: 'gallery', path: `${base}/snaps`, field: 'snaps', noun: 'snapshot', pageSize: PAGE, time: (s) => s.ts });
    // '' for every snapshot, 'person' for "People only".
    this.trigger = trigger;
  }

  /** Lists only snapshots of `trigger` ('' for all), from the newest. */
  setTrigger(trigger) {
    if (trigger === this.trigger) return;
    this.trigger = trigger;
    // The cards of the other filter must not be kept while the page loads.
    this.clear();
  }

  params() {
    return this.trigger ? { trigger: this.trigger } : {};
  }

  accepts(snap) {
    return !this.trigger || snap.trigger === this.trigger;
  }

  card(snap) {
    const url = this.urlOf(snap);
    // The tile shows the thumbnail; a tap opens the full picture.
    const thumb = snap.thumb || `${url}/thumb`;
    const remove = h('button', { type: 'button', class: 'danger small-btn' }, 'Delete');
    remove.addEventListener('click', () => this.delete(snap.name));
    return h('li', { class: 'snap', dataset: { name: snap.name } },
      h('a', { href: url, target: '_blank', rel: 'noopener', class: 'snap-img' },
        thumbnail(thumb, url, { alt: `${snap.trigger} snapshot ${formatTime(snap.ts)}`, loading: 'lazy', width: 320, height: 180 })),
      h('div', { class: 'snap-meta' },
        h('time', { datetime: new Date(snap.ts * 1000).toISOString() }, formatTime(snap.ts)),
        h('span', { class: 'muted small' }, `${snap.trigger} · ${formatBytes(snap.bytes)}`)),
      h('div', { class: 'snap-actions' },
        h('a', { href: url, target: '_blank', rel: 'noopener', class: 'btn-link' }, 'Open'),
        h('a', { href: url, download: snap.name, class: 'btn-link' }, 'Download'),
        remove));
  }
}
