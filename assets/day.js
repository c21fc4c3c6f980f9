// Local days and times of day for the recordings timeline. A day runs from
// the browser's midnight to the next one, so it is 23 or 25 hours long on
// the days the clocks change: every figure here is unix seconds, and days
// are found through Date, never by adding 86400.

/** Local midnight (unix s) of the day holding `ts` (unix s), `delta` days on. */
export function dayStart(ts, delta = 0) {
  const d = new Date(ts * 1000);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + delta).getTime() / 1000;
}

/** Unix seconds now. */
export const nowS = () => Date.now() / 1000;

/** "14:32:05" (the locale's clock, with seconds). */
export function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "14:32". */
export function clockMinutes(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** "Today", "Yesterday" or "Mon 3 Mar", then the full date: for the day's heading. */
export function dayTitle(start) {
  const date = new Date(start * 1000).toLocaleDateString([], { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
  const today = dayStart(nowS());
  if (start === today) return `Today, ${date}`;
  if (start === dayStart(today, -1)) return `Yesterday, ${date}`;
  return date;
}

/** "2025-03-03": a <time>'s datetime of a day. */
export function isoDay(start) {
  const d = new Date(start * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/**
 * Index of the last item whose `start_ts` is at or before `t` in a list
 * sorted by it, or -1.
 */
export function lastStartingBy(items, t) {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].start_ts <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
