// Short messages for the person: the reply to each button press.

import { $, h } from './util.js';

const LIFETIME_MS = 5000;

/**
 * Shows `text` for a few seconds. `link` ({href, text}) adds a link (e.g. to
 * the saved snapshot); `kind` 'error' makes it stand out and be announced
 * at once by screen readers.
 */
export function toast(text, { kind = 'info', link = null } = {}) {
  const box = $('toasts');
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', {}, text));
  if (link) item.append(' ', h('a', { href: link.href, target: '_blank', rel: 'noopener' }, link.text));
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  close.addEventListener('click', () => item.remove());
  item.append(close);
  box.append(item);
  // Keep the stack short on a phone screen.
  while (box.children.length > 4) box.firstElementChild.remove();
  // Links stay longer: the person may want to tap them.
  setTimeout(() => item.remove(), link ? LIFETIME_MS * 2 : LIFETIME_MS);
  return item;
}
