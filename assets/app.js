// The dashboard: finds out which cameras there are, then shows either the
// overview of all of them or one camera's full view, as the URL's hash says.
//
//   (none)               overview with several cameras, else the live view
//   #live, #gallery      the one camera (with several: the first, as the
//                        root routes are)
//   #cam/NAME            that camera's live view
//   #cam/NAME/gallery    that camera's snapshots
//   ?camera=NAME         that camera's live view (the links in phone
//                        notifications); with &clip=CLIP, that clip plays
//
// One camera (or an older server) gets exactly the page it always had, on the
// root routes. The parts live in their own modules; this file only switches
// between them, and builds a camera's view afresh each time the camera changes.

import { $ } from './util.js';
import { getJSON } from './api.js';
import { CameraView } from './camera.js';
import { Overview } from './overview.js';
import { toast } from './toast.js';
import { player, clipName } from './player.js';
import { registerWorker } from './push.js';
import { NotifyPanel } from './notify.js';
import { setTitle } from './unseen.js';

/**
 * The cameras (entries of /cams), or null for one camera at the root routes.
 * The root /status lists them as `cameras` on a server that has several; it
 * is read instead of /cams because an older server answers /cams with a 404,
 * which the browser logs as an error on every load. The overview reads /cams
 * itself later, once it knows the server has it.
 */
async function discover() {
  try {
    const st = await getJSON('/status');
    return Array.isArray(st?.cameras) && st.cameras.length > 1 ? st.cameras : null;
  } catch {
    // Unreachable for now: the root routes are right for one camera, and the
    // view's connections come back by themselves.
    return null;
  }
}

/** What the hash asks for: `{cam, view}`, each null when not said. */
function parseHash(hash) {
  const m = /^#cam\/([^/]+)(\/gallery)?$/.exec(hash);
  if (m) {
    let cam;
    try {
      cam = decodeURIComponent(m[1]);
    } catch {
      cam = m[1];
    }
    return { cam, view: m[2] ? 'gallery' : 'live' };
  }
  if (hash === '#gallery') return { cam: null, view: 'gallery' };
  if (hash === '#live') return { cam: null, view: 'live' };
  return { cam: null, view: null };
}

const camHash = (name, view) => `#cam/${encodeURIComponent(name)}${view === 'gallery' ? '/gallery' : ''}`;

let cameras = null; // several cameras, or null
let overview = null;
let current = null; // { name, view: CameraView }
let firstOverview = true;

/** Header and title for what is on show: 'overview', or a camera's 'live' / 'gallery'. */
function chrome(mode, name = null) {
  const multi = cameras !== null;
  const inOverview = mode === 'overview';
  const all = $('tab-all');
  all.hidden = !multi;
  const tabs = { all, live: $('tab-live'), gallery: $('tab-gallery') };
  for (const [key, tab] of Object.entries(tabs)) {
    if ((inOverview ? 'all' : mode) === key) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  tabs.live.hidden = inOverview;
  tabs.gallery.hidden = inOverview;
  if (multi && name !== null) {
    tabs.live.href = camHash(name, 'live');
    tabs.gallery.href = camHash(name, 'gallery');
  }
  // The overview has no stream or control socket of its own: only its feed.
  $('conn-stream').hidden = inOverview;
  $('conn-control').hidden = inOverview;
  const title = $('camera-name');
  title.hidden = !multi || inOverview;
  title.textContent = name ?? '';
  setTitle(multi && name !== null ? `${name} · lookout` : 'lookout');
}

function showOverview() {
  current?.view.destroy();
  current = null;
  $('live-view').hidden = true;
  $('gallery-view').hidden = true;
  chrome('overview');
  overview.show(firstOverview ? cameras : null);
  firstOverview = false;
}

/** Opens a camera's view (`name` null: the one camera at the root routes). */
function showCamera(name, base, view) {
  overview?.hide();
  if (!current || current.name !== name) {
    // The old camera's stream, socket and feed close before the new ones open.
    current?.view.destroy();
    current = { name, view: new CameraView({ base, name }) };
  }
  chrome(view, name);
  current.view.show(view);
}

function route() {
  const { cam, view } = parseHash(location.hash);
  if (cameras === null) {
    showCamera(null, '', view ?? 'live');
    return;
  }
  if (cam === null && view === null) {
    showOverview();
    return;
  }
  const found = cam === null ? cameras[0] : cameras.find((c) => c.name === cam);
  if (!found) {
    toast(`There is no camera named "${cam}".`, { kind: 'error' });
    history.replaceState(null, '', location.pathname + location.search);
    showOverview();
    return;
  }
  // An old bookmark (#live, #gallery) names the first camera: say so in the URL.
  if (cam === null) history.replaceState(null, '', camHash(found.name, view));
  showCamera(found.name, found.base, view);
}

/** What the query asks for (a notification's link): `{camera, clip}`, each null when not said. */
function parseQuery(search) {
  const q = new URLSearchParams(search);
  // A clip is named by its file name; a whole clip URL works too.
  const clip = q.get('clip');
  return { camera: q.get('camera') || null, clip: clip ? clipName(clip) || null : null };
}

/**
 * Turns `?camera=NAME[&clip=CLIP]` into the hash route it means, once, so a
 * reload or the back button does not open the clip again. Answers the clip
 * to play, or null.
 */
function takeQuery() {
  const { camera, clip } = parseQuery(location.search);
  if (camera === null) return null;
  const view = clip ? 'gallery' : 'live';
  const hash = cameras === null ? `#${view}` : camHash(camera, view);
  history.replaceState(null, '', location.pathname + hash);
  return clip;
}

/** Plays a clip of the camera on show (from a notification's link). */
function openClip(clip) {
  if (!current) return;
  const base = current.view.base;
  // It may still be recording when the notification went out: the player
  // then waits for it to be saved.
  player().open({ url: `${base}/clips/${encodeURIComponent(clip)}`, name: clip, pending: true });
}

async function main() {
  registerWorker().catch(() => {});
  new NotifyPanel();
  cameras = await discover();
  if (cameras !== null) overview = new Overview();
  // Pictures start after the page's load event: an MJPEG image that has no
  // frame yet (camera offline) would otherwise hold "load" (and the
  // browser's spinner) forever.
  if (document.readyState !== 'complete') {
    await new Promise((resolve) => window.addEventListener('load', resolve, { once: true }));
  }
  window.addEventListener('hashchange', route);
  // A picture nobody looks at costs bandwidth and one of the browser's few
  // connections to this host: pause them all in a background tab.
  document.addEventListener('visibilitychange', () => {
    current?.view.visibility();
    overview?.visibility();
  });
  const clip = takeQuery();
  route();
  if (clip) openClip(clip);
}

main();
