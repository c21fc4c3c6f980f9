// Snoozing a camera's phone notifications: the words for it (shared with the
// overview's tiles) and the "Notifications" card of a camera's view.
//
// The server keeps the snooze (`snoozed_until`, unix seconds, or null) and
// says so in the camera's status (`notify`) and with a `snooze` event; the
// page only shows it and counts down to its end.

import { $ } from './util.js';

/** The hour "until morning" ends at. */
export const MORNING_HOUR = 7;
// A snooze ends by itself; the page looks again this long after it should
// have (the browser's clock and the server's may differ a little).
const END_SLACK_MS = 1000;
// setTimeout cannot wait longer than about 24.8 days.
const MAX_WAIT_MS = 2 ** 31 - 1;

/** A snooze still in force: its end in unix seconds, else null. */
export function activeUntil(until, nowMs = Date.now()) {
  return Number.isFinite(until) && until * 1000 > nowMs ? until : null;
}

/** "15:04", "tomorrow 07:00", or "12 Dec 07:00" further out. */
export function formatUntil(until, nowMs = Date.now()) {
  const d = new Date(until * 1000);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const now = new Date(nowMs);
  if (d.toDateString() === now.toDateString()) return time;
  const tomorrow = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
  if (d.toDateString() === tomorrow.toDateString()) return `tomorrow ${time}`;
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}

/** "snoozed until 15:04", or null when not snoozed (any more). */
export function snoozeText(until, nowMs = Date.now()) {
  const end = activeUntil(until, nowMs);
  return end === null ? null : `snoozed until ${formatUntil(end, nowMs)}`;
}

/** Minutes from now until the next morning at MORNING_HOUR:00 (local time). */
export function minutesUntilMorning(nowMs = Date.now()) {
  const now = new Date(nowMs);
  const morning = new Date(now.getFullYear(), now.getMonth(), now.getDate(), MORNING_HOUR, 0, 0);
  if (morning.getTime() <= nowMs) morning.setDate(morning.getDate() + 1);
  return Math.ceil((morning.getTime() - nowMs) / 60000);
}

/** What a camera notifies about, in words ("people", "any motion", "nothing"). */
function onWords(on) {
  return { person: 'people', motion: 'any motion', off: 'nothing' }[on] ?? String(on);
}

/**
 * The "Notifications" card of a camera's view: what it notifies about, the
 * snooze, and buttons to snooze or lift it (the view runs them, as its
 * other buttons). Hidden until the camera's status says it has
 * notifications (an older server has none).
 */
export class SnoozeCard {
  constructor() {
    this.card = $('snooze-card');
    this.state = $('snooze-state');
    this.lift = $('snooze-lift');
    this.on = null;
    this.until = null;
    this.timer = null;
    this.card.hidden = true;
    $('snooze-morning').textContent = `Until ${String(MORNING_HOUR).padStart(2, '0')}:00`;
    this.buttons = [...this.card.querySelectorAll('button[data-minutes]')];
  }

  /** The snooze a button asks for, in minutes (0 lifts it). */
  minutesOf(button) {
    return button.dataset.minutes === 'morning' ? minutesUntilMorning() : Number(button.dataset.minutes);
  }

  /** The camera's `notify` from its status (or /cams entry). */
  apply(notify) {
    if (!notify || typeof notify !== 'object') return;
    this.on = notify.on ?? null;
    this.set(notify.snoozed_until ?? null);
  }

  /** A new snooze end (a `snooze` event, or the reply to a button). */
  set(until) {
    this.until = Number.isFinite(until) ? until : null;
    this.render();
  }

  render() {
    clearTimeout(this.timer);
    this.card.hidden = this.on === null;
    const text = snoozeText(this.until);
    const parts = [this.on === 'off' ? 'off for this camera' : `on for ${onWords(this.on)}`];
    if (text && this.on !== 'off') parts.push(text);
    this.state.textContent = parts.join(', ');
    this.card.dataset.snoozed = String(text !== null);
    this.lift.hidden = text === null;
    // When the snooze runs out, say so without waiting for the server.
    if (text !== null) {
      const wait = Math.min(MAX_WAIT_MS, this.until * 1000 - Date.now() + END_SLACK_MS);
      this.timer = setTimeout(() => this.render(), wait);
    }
  }

  destroy() {
    clearTimeout(this.timer);
  }
}
