// This device and Web Push: the service worker (sw.js), the browser's push
// subscription and the server's list of devices (/api/push/...).
//
// The worker is registered on every load, so notifications clicked later find
// it; it caches nothing. Which server entry is this device's is kept in
// localStorage (the server knows devices only by their push endpoint).

import { getJSON, postJSON, del } from './api.js';

const STORE = 'lookout.push';
const SUBSCRIBE_TIMEOUT_MS = 30000;

let registering = null;

/**
 * Registers the service worker (once per page); resolves to its
 * registration, or rejects with why it cannot run (no support, an insecure
 * page, a certificate the browser does not trust).
 */
export function registerWorker() {
  if (!registering) {
    registering = 'serviceWorker' in navigator
      ? navigator.serviceWorker.register('/sw.js', { scope: '/' })
      : Promise.reject(new Error('no service workers in this browser'));
    // The panel asks again and shows the reason; the page itself must not
    // count a refusal as an error.
    registering.catch((e) => console.warn(`service worker not registered: ${e.message || e}`));
  }
  return registering;
}

/**
 * What stands in the way of notifications on this device, as a sentence for
 * the person, or null when nothing does (as far as can be told before
 * trying). Web Push needs a secure page, which a plain-HTTP address on the
 * LAN is not.
 */
export function obstacle() {
  if (!window.isSecureContext) {
    return 'Notifications need HTTPS with a certificate this device trusts; this page came over plain HTTP. '
      + 'Open lookout at its https:// address (see the guide on certificates).';
  }
  if (!('serviceWorker' in navigator)) {
    return 'This browser does not run service workers here (a private window?), so it cannot receive notifications.';
  }
  if (!('PushManager' in window) || !('Notification' in window)) {
    return /iPhone|iPad|iPod/.test(navigator.userAgent)
      ? 'On an iPhone or iPad, notifications work only in the installed app: Share → Add to Home Screen, then open lookout from there.'
      : 'This browser cannot receive Web Push notifications.';
  }
  if (Notification.permission === 'denied') {
    return 'Notifications are blocked for this site. Allow them in the browser\'s site settings, then come back here.';
  }
  return null;
}

/** A sentence for a failed worker registration or subscription. */
export function explain(e) {
  const text = String(e?.message || e).replace(/\.$/, '');
  if (e?.name === 'SecurityError' || /SSL|certificate/i.test(text)) {
    return `The browser refused: ${text}. A self-signed certificate is not enough for notifications: `
      + 'this device must trust the certificate (install it, or use one from a public authority).';
  }
  if (e?.name === 'NotAllowedError') {
    return 'Notifications were not allowed. Allow them in the browser\'s site settings, then try again.';
  }
  if (e?.name === 'AbortError' && /permission denied/i.test(text)) {
    // Chrome's answer in a private (incognito) window, by design undetectable.
    return `The browser refused a push subscription (${text}). Private windows cannot receive notifications: `
      + 'open lookout in a normal window, or install it as an app.';
  }
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError' || /push service/i.test(text)) {
    return `The browser could not reach its push service: ${text}. (Browsers without Google or Apple services, `
      + 'and some private modes, cannot receive Web Push.)';
  }
  return text;
}

/** A guess at a name for this device ("Android phone", "Firefox on Linux"), to edit. */
export function defaultName() {
  const ua = navigator.userAgent;
  const device = /iPhone/.test(ua) ? 'iPhone'
    : /iPad/.test(ua) ? 'iPad'
      : /Android/.test(ua) ? (/Mobile/.test(ua) ? 'Android phone' : 'Android tablet')
        : /Mac OS X/.test(ua) ? 'Mac'
          : /Windows/.test(ua) ? 'Windows'
            : /Linux/.test(ua) ? 'Linux' : 'this device';
  const browser = /Firefox\//.test(ua) ? 'Firefox'
    : /Edg\//.test(ua) ? 'Edge'
      : /Chrome\//.test(ua) ? 'Chrome'
        : /Safari\//.test(ua) ? 'Safari' : '';
  return browser ? `${browser} on ${device}` : device;
}

/** The server entry this device stored: `{id, endpoint_origin}` or null. */
export function stored() {
  try {
    const v = JSON.parse(localStorage.getItem(STORE) || 'null');
    return v && typeof v.id === 'string' ? v : null;
  } catch {
    return null;
  }
}

function store(v) {
  if (v) localStorage.setItem(STORE, JSON.stringify(v));
  else localStorage.removeItem(STORE);
}

/** "ABC-_" base64url to bytes, for applicationServerKey. */
export function base64urlBytes(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '=');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/**
 * A browser whose push service is out of reach may take minutes to say so
 * (or never): give up after SUBSCRIBE_TIMEOUT_MS and say why.
 */
function withTimeout(promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error('no answer from the push service');
      err.name = 'TimeoutError';
      reject(err);
    }, SUBSCRIBE_TIMEOUT_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function sameBytes(buf, bytes) {
  if (!buf) return false;
  const a = new Uint8Array(buf);
  return a.length === bytes.length && a.every((v, i) => v === bytes[i]);
}

/** The server's list of devices. */
export async function devices() {
  const data = await getJSON('/api/push/subscriptions');
  return Array.isArray(data?.subscriptions) ? data.subscriptions : [];
}

/**
 * This device's entry in `list`, or null: the id it was given, from the
 * same push service (when the server says which).
 */
export function mine(list) {
  const own = stored();
  if (!own) return null;
  const sameService = (d) => !own.endpoint_origin || !d.endpoint_origin || d.endpoint_origin === own.endpoint_origin;
  return list.find((d) => d.id === own.id && sameService(d)) ?? null;
}

/**
 * Turns notifications on for this device (or changes what it gets): asks
 * for permission, subscribes with the server's key and registers the
 * subscription. `cameras` null means all. Resolves to the server's id.
 */
export async function enable({ name, cameras, on }) {
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') {
    const err = new Error(permission === 'denied' ? 'blocked' : 'not allowed');
    err.name = 'NotAllowedError';
    throw err;
  }
  const reg = await registerWorker();
  await navigator.serviceWorker.ready;
  const { public_key: key } = await getJSON('/api/push/key');
  const serverKey = base64urlBytes(key);
  let sub = await reg.pushManager.getSubscription();
  // A subscription made for another key (the server's was replaced) can
  // never carry this server's pushes.
  if (sub && !sameBytes(sub.options?.applicationServerKey, serverKey)) {
    await sub.unsubscribe();
    sub = null;
  }
  if (!sub) sub = await withTimeout(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: serverKey }));
  const reply = await postJSON('/api/push/subscriptions', { subscription: sub.toJSON(), name, cameras, on });
  store({ id: reply.id, endpoint_origin: new URL(sub.endpoint).origin });
  return reply.id;
}

/** Asks the server to send a test notification to `id` (all devices: null); how many went out. */
export async function sendTest(id) {
  const reply = await postJSON('/api/push/test', id ? { id } : {});
  return Number(reply?.queued) || 0;
}

/** Takes a device off the server's list; this device also unsubscribes. */
export async function remove(id) {
  const own = stored();
  if (own?.id === id) {
    // The browser forgets its subscription even if the server is away; the
    // server drops an entry whose endpoint stops answering anyway.
    try {
      const reg = await navigator.serviceWorker?.getRegistration('/');
      const sub = await reg?.pushManager?.getSubscription();
      await sub?.unsubscribe();
    } catch (e) {
      console.warn(`push unsubscribe failed: ${e.message || e}`);
    }
  }
  try {
    await del(`/api/push/subscriptions/${encodeURIComponent(id)}`);
  } catch (e) {
    // Gone already (removed from another device): that was the point.
    if (e.status !== 404) throw e;
  }
  if (own?.id === id) store(null);
}
