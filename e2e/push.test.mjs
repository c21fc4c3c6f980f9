// The dashboard as an installable app with phone notifications: the manifest
// and service worker, a push shown as a notification (delivered over the
// DevTools protocol: headless Chromium has no push service), the
// notification's buttons, the links they open, and the Notifications panel.
//
// Headless Chromium cannot click an OS notification: the tests call the
// worker's own click handler (`self.lookoutAction`) instead.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLookout, api } from './lib/server.mjs';
import { launch, launchPersistent, openPage, until } from './lib/browser.mjs';

// The yard moves all the time, so it has incidents (and their pictures).
const CAMERAS = [
  'yard=synthetic:?size=320x180&fps=5&motion=always',
  'gate=synthetic:?size=320x180&fps=5&motion=never',
];

let server;
let browser;

before(async () => {
  server = await startLookout({ cameras: CAMERAS });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A context allowed to show notifications, with the dashboard open and its worker in charge. */
async function openApp(path = '/') {
  const context = await browser.newContext();
  await context.grantPermissions(['notifications'], { origin: server.url });
  const page = await openPage(context, server.url + path);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  return { context, page };
}

/** The worker's registration id on the DevTools protocol (needed to push to it). */
async function registrationId(cdp) {
  const regs = new Map();
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
    for (const r of e.registrations) regs.set(r.registrationId, r);
  });
  await cdp.send('ServiceWorker.enable');
  return until(() => [...regs.values()].find((r) => r.scopeURL === `${server.url}/` && !r.isDeleted)?.registrationId,
    { what: 'the service worker registration' });
}

/** Delivers `payload` (JSON) to the worker as a push message. */
async function deliver(cdp, id, payload) {
  await cdp.send('ServiceWorker.deliverPushMessage', {
    origin: `${server.url}/`,
    registrationId: id,
    data: JSON.stringify(payload),
  });
}

/** The notifications the worker shows, as plain objects. */
function shown(page) {
  return page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    return (await reg.getNotifications()).map((n) => ({
      title: n.title, body: n.body, tag: n.tag, image: n.image, icon: n.icon, badge: n.badge,
      data: n.data, actions: n.actions.map((a) => a.action), timestamp: n.timestamp,
    }));
  });
}

/** Runs the worker's click handler, as a click on `action` of a notification with `data`. */
async function click(context, action, data) {
  const [worker] = context.serviceWorkers();
  assert.ok(worker, 'a service worker runs');
  return worker.evaluate(([a, d]) => self.lookoutAction(a, d), [action, data]);
}

const payload = (over = {}) => ({
  title: 'Person at yard',
  body: '14:03 · gate',
  tag: 'lookout-yard-1',
  image: '/api/incidents/1/picture.jpg',
  url: '/?camera=yard',
  camera: 'yard',
  kind: 'person',
  incident: 1,
  ts: 1765000000.5,
  update: false,
  ...over,
});

test('the service worker controls the page and the manifest passes Chromium\'s install check', async () => {
  // Not incognito: there Chrome refuses to install anything, whatever the manifest says.
  const dir = await mkdtemp(join(tmpdir(), 'lookout-e2e-profile-'));
  const context = await launchPersistent(dir);
  try {
    const page = await openPage(context, server.url + '/');
    // `ready` resolves while the worker may still be activating.
    await page.waitForFunction(async () => (await navigator.serviceWorker.ready).active?.state === 'activated');
    const active = await page.evaluate(async () => {
      const reg = await navigator.serviceWorker.ready;
      return { scope: reg.scope, script: reg.active?.scriptURL, controlled: navigator.serviceWorker.controller !== null };
    });
    assert.deepEqual(active, { scope: `${server.url}/`, script: `${server.url}/sw.js`, controlled: true });
    const cdp = await context.newCDPSession(page);
    const manifest = await cdp.send('Page.getAppManifest');
    assert.equal(manifest.url, `${server.url}/manifest.webmanifest`);
    assert.deepEqual(manifest.errors, []);
    const parsed = JSON.parse(manifest.data);
    assert.equal(parsed.display, 'standalone');
    assert.ok(parsed.icons.some((i) => i.purpose === 'maskable'));
    // The check runs once the worker is in charge: ask until it has settled.
    let errors;
    await until(async () => {
      ({ installabilityErrors: errors } = await cdp.send('Page.getInstallabilityErrors'));
      return errors.length === 0;
    }, { what: 'no installability errors' }).catch(() => {});
    assert.deepEqual(errors, []);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the manifest, its icons and the worker load without signing in; the dashboard does not', async () => {
  // Browsers fetch a manifest without cookies, and the login page has none to send.
  const locked = await startLookout({
    source: 'synthetic:?size=320x180&fps=5&motion=never',
    args: ['--require-auth'],
    env: { LOOKOUT_PASSWORD: 'correct horse battery' },
  });
  try {
    for (const [path, type] of [
      ['/manifest.webmanifest', 'application/manifest+json'],
      ['/sw.js', 'text/javascript; charset=utf-8'],
      ['/icon-192.png', 'image/png'],
      ['/icon-512.png', 'image/png'],
      ['/icon-maskable-512.png', 'image/png'],
      ['/badge-96.png', 'image/png'],
    ]) {
      const res = await fetch(locked.url + path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), type, path);
    }
    const manifest = await (await fetch(`${locked.url}/manifest.webmanifest`)).json();
    for (const icon of manifest.icons) {
      const res = await fetch(locked.url + icon.src);
      const png = Buffer.from(await res.arrayBuffer());
      // The size the manifest claims is the PNG's own (IHDR width and height).
      assert.equal(`${png.readUInt32BE(16)}x${png.readUInt32BE(20)}`, icon.sizes, icon.src);
    }
    for (const path of ['/app.js', '/push.js', '/api/push/key']) {
      assert.equal((await fetch(locked.url + path)).status, 401, path);
    }
  } finally {
    await locked.stop();
  }
});

test('a push shows a notification with its picture; the same tag replaces it', async () => {
  // A real incident's picture, as the server's pushes name it.
  const incident = await until(async () => (await api(server, '/api/incidents?camera=yard')).incidents?.[0],
    { timeout: 15000, what: 'an incident at the yard' });
  const picture = Buffer.from(await (await fetch(server.url + incident.picture)).arrayBuffer());
  const { context, page } = await openApp('/');
  try {
    const cdp = await context.newCDPSession(page);
    const id = await registrationId(cdp);
    await deliver(cdp, id, payload({ image: incident.picture, incident: incident.id }));
    const [first] = await until(async () => {
      const list = await shown(page);
      return list.length > 0 ? list : null;
    }, { what: 'a notification' });
    assert.equal(first.title, 'Person at yard');
    assert.equal(first.body, '14:03 · gate');
    assert.equal(first.tag, 'lookout-yard-1');
    // The picture travels inside the notification: the shade has no cookie.
    assert.equal(first.image, `data:image/jpeg;base64,${picture.toString('base64')}`);
    assert.equal(first.icon, `${server.url}/icon-192.png`);
    assert.equal(first.badge, `${server.url}/badge-96.png`);
    assert.deepEqual(first.actions, ['open', 'snooze']);
    assert.deepEqual(first.data, { url: `${server.url}/?camera=yard`, camera: 'yard', incident: incident.id });
    assert.equal(first.timestamp, 1765000000500);

    // An update of the same incident: one notification with the new words.
    await deliver(cdp, id, payload({ body: '14:04 · gate, 2 people', update: true }));
    await until(async () => {
      const list = (await shown(page)).filter((n) => n.tag === 'lookout-yard-1');
      return list.length === 1 && list[0].body === '14:04 · gate, 2 people';
    }, { what: 'the notification replaced' });

    // A picture that cannot be had: the words still come, without one.
    await deliver(cdp, id, payload({ tag: 'lookout-yard-2', image: '/no/such/picture.jpg', title: 'Motion at yard' }));
    const second = await until(async () => (await shown(page)).find((n) => n.tag === 'lookout-yard-2'), { what: 'the second notification' });
    assert.equal(second.title, 'Motion at yard');
    assert.equal(second.image, '');
    // Only pictures of this origin are fetched.
    await deliver(cdp, id, payload({ tag: 'lookout-yard-3', image: 'https://elsewhere.invalid/x.jpg' }));
    const third = await until(async () => (await shown(page)).find((n) => n.tag === 'lookout-yard-3'), { what: 'the third notification' });
    assert.equal(third.image, '');
    assert.deepEqual(page.problems.filter((p) => !p.includes('/no/such/picture.jpg')), []);
  } finally {
    await context.close();
  }
});

test('"Snooze 1 h" on a notification snoozes the camera, and the dashboard shows it', async () => {
  const { context, page } = await openApp('/');
  try {
    await page.locator('#overview-list a.tile[data-camera="gate"]').waitFor();
    const before = Date.now() / 1000;
    const reply = await click(context, 'snooze', { camera: 'gate', url: '/?camera=gate', incident: 7 });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    const status = await until(async () => {
      const st = await api(server, '/cams/gate/status');
      return Number.isFinite(st.notify?.snoozed_until) ? st : null;
    }, { what: 'gate snoozed on the server' });
    const until_ = status.notify.snoozed_until;
    assert.ok(until_ > before + 3500 && until_ < Date.now() / 1000 + 3700, `snoozed until ${until_}, an hour ahead`);
    // The overview hears it from the event feed.
    const tileSnooze = page.locator('#overview-list a.tile[data-camera="gate"] .tile-snooze');
    await until(async () => /^snoozed until \d{1,2}:\d\d/.test(await tileSnooze.textContent()), { what: 'the tile says snoozed' });
    assert.equal(await page.locator('#overview-list a.tile[data-camera="yard"] .tile-snooze').isHidden(), true);

    // The camera's own view has the card; "Lift snooze" lifts it.
    await page.click('#overview-list a.tile[data-camera="gate"]');
    await page.locator('#snooze-card[data-snoozed="true"]').waitFor();
    assert.match(await page.locator('#snooze-state').textContent(), /snoozed until \d{1,2}:\d\d/);
    await page.click('#snooze-lift');
    await page.locator('#snooze-card[data-snoozed="false"]').waitFor();
    await until(async () => (await api(server, '/cams/gate/status')).notify?.snoozed_until === null, { what: 'gate no longer snoozed' });
    // And "8 h" from the card.
    await page.click('#snooze-card button[data-minutes="480"]');
    await page.locator('#snooze-card[data-snoozed="true"]').waitFor();
    const st = await api(server, '/cams/gate/status');
    assert.ok(st.notify.snoozed_until > Date.now() / 1000 + 8 * 3600 - 120, 'eight hours ahead');
    // Lifted elsewhere (another phone, MQTT): the feed tells this view.
    await api(server, '/cams/gate/control', { method: 'POST', body: { cmd: 'snooze', minutes: 0 } });
    await page.locator('#snooze-card[data-snoozed="false"]').waitFor();
    assert.match(await page.locator('#snooze-state').textContent(), /^on for people$/);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});

test('"Open" on a notification takes the dashboard to the camera, or the clip', async () => {
  const { context, page } = await openApp('/');
  try {
    await page.locator('#overview-list a.tile[data-camera="gate"]').waitFor();
    const result = await click(context, 'open', { url: `${server.url}/?camera=gate`, camera: 'gate' });
    assert.deepEqual(result, { ok: true, navigated: true });
    // The query became the camera's route, so a reload does not repeat it.
    await page.waitForURL(`${server.url}/#cam/gate`);
    await page.locator('#camera-name', { hasText: 'gate' }).waitFor();
    assert.equal(await page.locator('#live-view').isVisible(), true);

    // A link with a clip opens that camera's gallery and the player on the
    // clip; one not saved yet (or not kept) is said so.
    // (The server may write its links under its public URL: the worker keeps the path, on this origin.)
    await click(context, undefined, { url: 'https://cam.example.org/?camera=yard&clip=motion-1765000000123.mkv', camera: 'yard' });
    await page.waitForURL(`${server.url}/#cam/yard/gallery`);
    await page.locator('#player[open]').waitFor();
    assert.equal(await page.locator('#player-title').textContent(), 'motion-1765000000123.mkv');
    assert.equal(await page.locator('#player-download').getAttribute('href'), '/cams/yard/clips/motion-1765000000123.mkv');
    await page.locator('#player-status', { hasText: 'not saved yet' }).waitFor();
    assert.deepEqual(page.problems.filter((p) => !/404/.test(p)), []);
  } finally {
    await context.close();
  }
});

test('the panel says why notifications cannot work: plain HTTP off loopback, an untrusted certificate, blocked, a private window', async () => {
  // A LAN name over plain HTTP is not a secure context: no worker, no push.
  const lan = await launch({ args: [`--host-resolver-rules=MAP cam.test 127.0.0.1`] });
  const named = await startLookout({ source: 'synthetic:?size=320x180&fps=5&motion=never', args: ['--allow-host', 'cam.test'] });
  try {
    const context = await lan.newContext();
    const page = await openPage(context, `http://cam.test:${named.port}/`);
    await page.click('#notify-open');
    await page.locator('#notify-state[data-kind="error"]', { hasText: 'HTTPS' }).waitFor();
    assert.equal(await page.locator('#notify-enable').isDisabled(), true);
    assert.equal(await page.evaluate(() => window.isSecureContext || 'serviceWorker' in navigator), false);
    // One camera: nothing to choose.
    assert.equal(await page.locator('#notify-cams').isHidden(), true);
    assert.deepEqual(page.problems, []);
  } finally {
    await lan.close();
    await named.stop();
  }

  // A self-signed certificate: the page opens once the person accepts it,
  // but the browser refuses the worker, so there can be no push.
  const tls = await startLookout({ source: 'synthetic:?size=320x180&fps=5&motion=never', args: ['--tls-self-signed'] });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await openPage(context, `${tls.url}/`);
    await page.click('#notify-open');
    await page.locator('#notify-state[data-kind="error"]', { hasText: 'this device must trust the certificate' }).waitFor();
    assert.equal(await page.locator('#notify-enable').isDisabled(), true);
    // Chromium logs its refusal itself.
    assert.deepEqual(page.problems.filter((p) => !/SSL certificate error/.test(p)), []);
  } finally {
    await tls.stop();
  }

  // Not allowed to notify (headless Chromium answers a prompt with "denied").
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server.url + '/');
    await page.click('#notify-open');
    await page.locator('#notify-state', { hasText: 'Off for this device' }).waitFor();
    await page.click('#notify-enable');
    await page.locator('#notify-state[data-kind="error"]', { hasText: 'not allowed' }).waitFor();
    // Now the browser remembers the refusal: the panel says so when opened.
    await page.click('#notify-close');
    await page.click('#notify-open');
    await page.locator('#notify-state[data-kind="error"]', { hasText: 'blocked' }).waitFor();
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }

  // Allowed, but a private window: Chrome refuses the subscription itself.
  const { context: priv, page } = await openApp('/');
  try {
    await page.click('#notify-open');
    await page.locator('#notify-state', { hasText: 'Off for this device' }).waitFor();
    await page.click('#notify-enable');
    await page.locator('#notify-state[data-kind="error"]', { hasText: 'Private windows cannot receive' }).waitFor();
    assert.deepEqual((await api(server, '/api/push/subscriptions')).subscriptions, []);
    // Chrome logs its refusal as an error of the page.
    assert.deepEqual(page.problems.filter((p) => !/Push API in incognito/.test(p)), []);
  } finally {
    await priv.close();
  }
});

/** A subscription as a browser would send it, for an endpoint nobody answers. */
function fakeSubscription(n) {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return {
    endpoint: `https://push.invalid/send/${n}-${randomBytes(8).toString('hex')}`,
    expirationTime: null,
    keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
  };
}

test('the panel sends a test to a device, turns this one off and removes another', async () => {
  const mine = await api(server, '/api/push/subscriptions', {
    method: 'POST', body: { subscription: fakeSubscription(1), name: 'Test phone', cameras: ['gate'], on: 'motion' },
  });
  const other = await api(server, '/api/push/subscriptions', {
    method: 'POST', body: { subscription: fakeSubscription(2), name: 'Other tablet', cameras: null, on: 'person' },
  });
  assert.equal(mine.ok, true);
  const context = await browser.newContext();
  try {
    // This browser is the device that registered `mine` (a real subscription
    // needs a push service, which headless Chromium has not).
    await context.addInitScript((id) => {
      if (!localStorage.getItem('lookout.push')) localStorage.setItem('lookout.push', JSON.stringify({ id, endpoint_origin: 'https://push.invalid' }));
    }, mine.id);
    const page = await openPage(context, server.url + '/');
    await page.click('#notify-open');
    await page.locator('#notify-state[data-kind="ok"]', { hasText: 'On for this device: any motion · gate' }).waitFor();
    assert.equal(await page.locator('#notify-enable').textContent(), 'Save');
    assert.equal(await page.locator('#notify-name').inputValue(), 'Test phone');
    assert.equal(await page.locator('#notify-cams-some').isChecked(), true);
    assert.equal(await page.locator('#notify-cam-list input[value="gate"]').isChecked(), true);
    assert.equal(await page.locator('#notify-cam-list input[value="yard"]').isChecked(), false);
    assert.equal(await page.locator('#notify-on-motion').isChecked(), true);
    const row = (id) => page.locator(`#notify-devices li[data-id="${id}"]`);
    await row(other.id).waitFor();
    assert.match(await row(mine.id).textContent(), /Test phone.*this device/);
    assert.match(await row(other.id).textContent(), /Other tablet.*people · all cameras/);

    await page.click('#notify-test');
    await page.locator('.toast', { hasText: 'Test notification sent' }).waitFor();
    await page.click('#notify-test-all');
    await page.locator('.toast', { hasText: 'Test sent (2 notifications)' }).waitFor();

    await row(other.id).locator('button', { hasText: 'Remove' }).click();
    await row(other.id).waitFor({ state: 'detached' });
    await page.click('#notify-off');
    await page.locator('#notify-state', { hasText: 'Off for this device.' }).waitFor();
    assert.equal(await page.locator('#notify-off').isHidden(), true);
    assert.equal(await page.evaluate(() => localStorage.getItem('lookout.push')), null);
    const left = (await api(server, '/api/push/subscriptions')).subscriptions.map((s) => s.id);
    assert.ok(!left.includes(mine.id) && !left.includes(other.id), `both gone: ${left}`);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});
