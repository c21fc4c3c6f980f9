// Unseen incidents: those newer than the last one this browser showed in a
// camera's view. The overview counts them on each tile and the page title
// says how many in all ("(3) lookout"), so a glance at a tab tells there is
// something to look at. Kept in localStorage by camera as the last seen
// incident id (ids only grow), so a reload does not count them again.

const KEY = 'lookout.seenIncidents';

/** Every camera's last seen incident id: `{name: id}`. */
function readAll() {
  try {
    const all = JSON.parse(localStorage.getItem(KEY) || '{}');
    return all && typeof all === 'object' && !Array.isArray(all) ? all : {};
  } catch {
    // Storage refused (private mode) or garbled: nothing was seen.
    return {};
  }
}

/** The last incident id seen on `camera`, or null when none ever was. */
export function lastSeen(camera) {
  const id = readAll()[camera];
  return Number.isFinite(id) ? id : null;
}

/** Incident `id` of `camera` (and every one before it) has been seen. */
export function markSeen(camera, id) {
  if (typeof camera !== 'string' || !Number.isFinite(id)) return;
  const all = readAll();
  if (Number.isFinite(all[camera]) && all[camera] >= id) return;
  all[camera] = id;
  try {
    localStorage.setItem(KEY, JSON.stringify(all));
  } catch {
    // Not kept: they count as unseen again after a reload, nothing worse.
  }
}

let title = 'lookout';
let count = 0;

/** The page's title without the count. */
export function setTitle(text) {
  title = text;
  render();
}

/** How many unseen incidents the title counts (0: none shown). */
export function setUnseen(n) {
  count = Number.isFinite(n) && n > 0 ? n : 0;
  render();
}

/** A count as a tile or the title shows it: "3", or "99+". */
export function formatCount(n) {
  return n > 99 ? '99+' : String(n);
}

function render() {
  document.title = count > 0 ? `(${formatCount(count)}) ${title}` : title;
}
