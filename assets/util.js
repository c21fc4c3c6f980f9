// Small helpers shared by the dashboard modules.

/** Returns `el` looked up by id, failing loudly when the page and code disagree. */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

/** Creates an element with properties and children (no innerHTML: data is text). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else if (typeof v === 'function' || typeof v === 'object') el[k] = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/**
 * An <img> of a snapshot's thumbnail (320 px wide, ~10 KB instead of the
 * ~120 KB picture: the gallery and the event list load fast on a phone).
 * Should the thumbnail fail (a file lookout cannot shrink), the full picture
 * is shown instead, once.
 */
export function thumbnail(thumb, full, props = {}) {
  const img = h('img', { ...props, src: thumb || full });
  if (thumb && thumb !== full) {
    img.addEventListener('error', () => { img.src = full; }, { once: true });
  }
  return img;
}

/**
 * Exponential backoff with jitter: reconnecting clients of a restarted
 * server must not all knock at the same instant.
 */
export class Backoff {
  constructor(min = 500, max = 10000) {
    this.min = min;
    this.max = max;
    this.current = min;
  }
  next() {
    const wait = this.current;
    this.current = Math.min(this.max, this.current * 2);
    return wait * (0.8 + Math.random() * 0.4);
  }
  reset() {
    this.current = this.min;
  }
}

/** "14:03:22", with the date in front when it is not today. */
export function formatTime(tsSeconds) {
  const d = new Date(tsSeconds * 1000);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (d.toDateString() === new Date().toDateString()) return time;
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}

/**
 * "just now", "40 s ago", "2 min ago", "3 h ago", then the date. The server's
 * clock may run a little ahead of the browser's: a time "in the future" is
 * just now.
 */
export function formatAgo(tsSeconds, nowMs = Date.now()) {
  const s = Math.max(0, Math.round(nowMs / 1000 - tsSeconds));
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return formatTime(tsSeconds);
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Percentages come from f32 on the server (3.299999952316284): show one decimal. */
export function formatPercent(x) {
  return Number.isFinite(x) ? `${x.toFixed(1)} %` : '–';
}

/**
 * The motion score (0-100): how strongly the picture changed, not a share of
 * it (that is `area`, a percentage). One decimal, no unit.
 */
export function formatScore(x) {
  return Number.isFinite(x) ? x.toFixed(1) : '–';
}

/** "12.8 s", "2 min 5 s" from a minute on. */
export function formatSeconds(s) {
  if (!Number.isFinite(s)) return '';
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

/** Shows a state on a connection pill: colour via data-state, the word as text. */
export function setPill(el, state, word = state) {
  el.dataset.state = state;
  const label = el.querySelector('.pill-state');
  if (label) label.textContent = word;
  el.title = `${el.firstChild.textContent.trim()}: ${word}`;
}
