// The service worker: shows lookout's phone notifications (Web Push) and
// answers their buttons.
//
// It has no fetch handler and caches nothing: the dashboard is always the
// live server's, and a camera page that loads from a cache while the server
// is away would show a picture that is not there.
//
// A push carries JSON (see the server's push payload):
//   {title, body, tag, image, url, camera, kind, incident, ts, update}
// `image` is a same-origin URL that needs the session cookie, which the
// phone's notification shade does not have: the worker fetches it (with
// cookies) and hands the notification a data: URL instead.

const ICON = '/icon-192.png';
const BADGE = '/badge-96.png';
/** "Snooze 1 h" on a notification. */
const SNOOZE_MINUTES = 60;

// A new version takes over at once: there is no cache whose old files it
// would have to wait for.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

/** `url` as an absolute URL of this origin, or null for anything else. */
function sameOrigin(url) {
  if (typeof url !== 'string' || url === '') return null;
  try {
    const u = new URL(url, self.location.origin);
    return u.origin === self.location.origin ? u.href : null;
  } catch {
    return null;
  }
}

/**
 * Where a notification's link leads, on this origin. The server may write
 * links under its public URL, which can differ from the address this phone
 * uses: the path is what matters, and a tap must never leave for elsewhere.
 */
function localLink(url) {
  try {
    const u = new URL(typeof url === 'string' && url ? url : '/', self.location.origin);
    return new URL(u.pathname + u.search + u.hash, self.location.origin).href;
  } catch {
    return new URL('/', self.location.origin).href;
  }
}

/** The picture at `url` as a data: URL, or null when it cannot be had. */
async function pictureData(url) {
  const href = sameOrigin(url);
  if (!href) return null;
  try {
    const res = await fetch(href, { credentials: 'same-origin', cache: 'no-store' });
    if (!res.ok) return null;
    const blob = await res.blob();
    if (!blob.type.startsWith('image/')) return null;
    return await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  } catch {
    // Offline, signed out, gone: the words still say what happened.
    return null;
  }
}

/** Shows the notification a push payload describes. */
async function show(msg) {
  const m = msg && typeof msg === 'object' ? msg : {};
  const title = typeof m.title === 'string' && m.title ? m.title : 'lookout';
  const tag = typeof m.tag === 'string' && m.tag ? m.tag : undefined;
  const camera = typeof m.camera === 'string' && m.camera ? m.camera : null;
  const image = await pictureData(m.image);
  const actions = [{ action: 'open', title: 'Open' }];
  if (camera) actions.push({ action: 'snooze', title: 'Snooze 1 h' });
  const options = {
    body: typeof m.body === 'string' ? m.body : '',
    icon: ICON,
    badge: BADGE,
    data: { url: localLink(m.url), camera, incident: m.incident ?? null },
    // An update of an incident already shown (a better picture, a person
    // after the motion) replaces it quietly; a new one rings again. Without
    // a tag there is nothing to replace, and renotify would be refused.
    renotify: Boolean(tag) && !m.update,
    actions,
  };
  if (tag) options.tag = tag;
  if (image) options.image = image;
  if (Number.isFinite(m.ts)) options.timestamp = Math.round(m.ts * 1000);
  await self.registration.showNotification(title, options);
}

self.addEventListener('push', (event) => {
  let msg = {};
  try {
    msg = event.data ? event.data.json() : {};
  } catch {
    // Not JSON (a test from a push service's console): show the text.
    msg = { body: event.data?.text() ?? '' };
  }
  event.waitUntil(show(msg));
});

/** Snoozes a camera's notifications for an hour; the server's reply. */
async function snooze(camera) {
  const res = await fetch(`/cams/${encodeURIComponent(camera)}/control`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ cmd: 'snooze', minutes: SNOOZE_MINUTES }),
  });
  let reply = null;
  try {
    reply = await res.json();
  } catch {
    // An HTML error page from a proxy: the status says enough.
  }
  if (!res.ok || !reply?.ok) {
    const why = reply?.error || reply?.reason || `${res.status} ${res.statusText}`;
    // Nobody is looking at the dashboard: say it where the button was.
    await self.registration.showNotification(`Could not snooze ${camera}`, {
      body: `${why}. Open lookout to snooze it there.`,
      icon: ICON,
      badge: BADGE,
      tag: `lookout-snooze-${camera}`,
      data: { url: `/?camera=${encodeURIComponent(camera)}`, camera, incident: null },
    });
  }
  return reply ?? { ok: false, status: res.status };
}

/**
 * Opens `url` in a dashboard window of this origin (the one in front, else
 * any), or in a new window when there is none or it cannot be steered.
 */
async function open(url) {
  const href = localLink(url);
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const ours = windows.filter((c) => sameOrigin(c.url) !== null);
  ours.sort((a, b) => Number(b.focused) - Number(a.focused) || Number(b.visibilityState === 'visible') - Number(a.visibilityState === 'visible'));
  for (const client of ours) {
    // Only a window this worker controls can be navigated.
    let moved = null;
    try {
      moved = await client.navigate(href);
    } catch {
      continue;
    }
    try {
      await (moved ?? client).focus();
    } catch {
      // Focus needs the click's user activation; the window still moved.
    }
    return { ok: true, navigated: true };
  }
  await self.clients.openWindow(href);
  return { ok: true, navigated: false };
}

/**
 * What a notification's button (or the notification itself: no action)
 * does; `data` is the notification's. On `self` so it can be called
 * directly where no notification can be clicked (a headless browser).
 */
self.lookoutAction = async (action, data = {}) => {
  if (action === 'snooze' && data.camera) return snooze(data.camera);
  return open(data.url);
};

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(self.lookoutAction(event.action, event.notification.data || {}));
});
