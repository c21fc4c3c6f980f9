// The "Notifications" panel: turns phone notifications on or off for this
// device (which cameras, people or any motion), sends a test, and lists the
// devices that get them, each of which can be tested or removed from here.
//
// What cannot work is said plainly before anything is tried: no service
// worker, no Web Push, a page that is not secure (plain HTTP on a LAN
// address), notifications blocked. The push plumbing is in push.js.

import { $, h, formatTime } from './util.js';
import { getJSON } from './api.js';
import { toast } from './toast.js';
import * as push from './push.js';

const ON_WORDS = { person: 'people', motion: 'any motion' };

/** "people · yard, gate" for a device entry. */
function describe(d) {
  const cams = Array.isArray(d.cameras) && d.cameras.length > 0 ? d.cameras.join(', ') : 'all cameras';
  return `${ON_WORDS[d.on] ?? d.on} · ${cams}`;
}

/** "since 3 Dec 14:03" from a unix time or a date string; '' when neither. */
function since(created) {
  const ts = typeof created === 'number' ? created : Date.parse(created) / 1000;
  return Number.isFinite(ts) ? `since ${formatTime(ts)}` : '';
}

/** The push service's host ("fcm.googleapis.com"): which kind of browser it is. */
function via(origin) {
  try {
    return new URL(origin).host;
  } catch {
    return '';
  }
}

export class NotifyPanel {
  constructor() {
    this.dialog = $('notify');
    this.state = $('notify-state');
    this.form = $('notify-form');
    this.name = $('notify-name');
    this.camList = $('notify-cam-list');
    this.enableBtn = $('notify-enable');
    this.testBtn = $('notify-test');
    this.offBtn = $('notify-off');
    this.list = $('notify-devices');
    this.empty = $('notify-devices-empty');
    this.own = null; // this device's server entry
    this.workerError = null;
    this.busy = false;
    this.generation = 0;

    $('notify-open').addEventListener('click', () => this.open());
    $('notify-close').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('click', (e) => { if (e.target === this.dialog) this.dialog.close(); });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.run(this.enableBtn, () => this.enable());
    });
    this.testBtn.addEventListener('click', () => this.run(this.testBtn, () => this.test(this.own?.id)));
    this.offBtn.addEventListener('click', () => this.run(this.offBtn, () => this.remove(this.own?.id)));
    const all = $('notify-test-all');
    all.addEventListener('click', () => this.run(all, () => this.testAll()));
    // Ticking a camera means "only these".
    this.camList.addEventListener('change', () => { $('notify-cams-some').checked = true; });
  }

  async open() {
    if (!this.dialog.open) this.dialog.showModal();
    await this.refresh();
  }

  /** Says `text` at the top; `kind` 'error' for what stands in the way. */
  say(text, kind = 'info') {
    this.state.textContent = text;
    this.state.dataset.kind = kind;
  }

  /** Reads the cameras and the devices again and shows them. */
  async refresh() {
    const gen = ++this.generation;
    const [cams, list, worker] = await Promise.allSettled([getJSON('/cams'), push.devices(), this.worker()]);
    if (gen !== this.generation) return;
    this.workerError = worker.value ?? null;
    this.renderCameras(cams.status === 'fulfilled' && Array.isArray(cams.value?.cameras)
      ? cams.value.cameras.map((c) => c.name) : []);
    if (list.status === 'rejected') {
      this.own = null;
      this.renderDevices([]);
      this.setButtons();
      // What stands in the way on this device comes first: it is the one
      // the person can do something about.
      const problem = this.problem();
      if (problem) this.say(problem, 'error');
      else this.say(list.reason?.status === 404
        ? 'This lookout has no phone notifications (it is an older version).'
        : `Could not read the devices: ${list.reason?.message || list.reason}`, 'error');
      return;
    }
    this.own = push.mine(list.value);
    this.renderDevices(list.value);
    this.fill(this.own);
    this.setButtons();
    this.sayState();
  }

  /**
   * Why the service worker could not start (an Error), or null. Only asked
   * where one could run at all: a certificate the browser does not trust
   * shows here, and nowhere before.
   */
  async worker() {
    if (push.obstacle()) return null;
    try {
      await push.registerWorker();
      return null;
    } catch (e) {
      return e;
    }
  }

  /** What stands in the way, as a sentence, or null. */
  problem() {
    return push.obstacle() ?? (this.workerError ? push.explain(this.workerError) : null);
  }

  /** The line at the top: what stands in the way, or whether this device is on. */
  sayState() {
    const problem = this.problem();
    if (problem) this.say(problem, 'error');
    else if (this.own) this.say(`On for this device: ${describe(this.own)}.`, 'ok');
    else this.say('Off for this device.');
  }

  setButtons() {
    const on = this.own !== null;
    this.enableBtn.textContent = on ? 'Save' : 'Enable';
    this.enableBtn.disabled = this.problem() !== null;
    this.testBtn.hidden = !on;
    this.offBtn.hidden = !on;
  }

  renderCameras(names) {
    const checked = new Set([...this.camList.querySelectorAll('input:checked')].map((i) => i.value));
    // With one camera there is nothing to choose.
    $('notify-cams').hidden = names.length < 2;
    this.camList.replaceChildren(...names.map((name) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'notify-cam', value: name, checked: checked.has(name) }), ` ${name}`)));
  }

  /** The form shows this device's choices (or the defaults). */
  fill(own) {
    if (!this.name.value) this.name.value = own?.name || push.defaultName();
    const some = Array.isArray(own?.cameras) && own.cameras.length > 0;
    $(some ? 'notify-cams-some' : 'notify-cams-all').checked = true;
    for (const box of this.camList.querySelectorAll('input')) box.checked = some && own.cameras.includes(box.value);
    $(own?.on === 'motion' ? 'notify-on-motion' : 'notify-on-person').checked = true;
  }

  renderDevices(list) {
    const ownId = this.own?.id;
    this.list.replaceChildren(...list.map((d) => {
      const test = h('button', { type: 'button', class: 'secondary small-btn' }, 'Send a test');
      test.addEventListener('click', () => this.run(test, () => this.test(d.id)));
      const remove = h('button', { type: 'button', class: 'danger small-btn' }, 'Remove');
      remove.addEventListener('click', () => this.run(remove, () => this.remove(d.id)));
      return h('li', { class: 'notify-device', dataset: { id: d.id } },
        h('div', {},
          h('strong', {}, d.name || 'unnamed'),
          d.id === ownId ? h('span', { class: 'badge badge-person' }, 'this device') : null),
        h('div', { class: 'muted small' }, [describe(d), via(d.endpoint_origin), since(d.created)].filter(Boolean).join(' · ')),
        h('div', { class: 'buttons' }, test, remove));
    }));
    this.empty.hidden = list.length > 0;
  }

  /** What the form asks for: `{name, cameras, on}`. */
  choices() {
    const some = $('notify-cams-some').checked && !$('notify-cams').hidden;
    const cameras = some ? [...this.camList.querySelectorAll('input:checked')].map((i) => i.value) : null;
    return {
      name: this.name.value.trim() || push.defaultName(),
      cameras,
      on: $('notify-on-motion').checked ? 'motion' : 'person',
    };
  }

  /** Runs a button's action once at a time; failures are said at the top. */
  async run(button, action) {
    if (this.busy) return;
    this.busy = true;
    button.setAttribute('aria-disabled', 'true');
    try {
      await action();
    } catch (e) {
      this.say(push.explain(e), 'error');
    } finally {
      this.busy = false;
      button.removeAttribute('aria-disabled');
    }
  }

  async enable() {
    const problem = this.problem();
    if (problem) {
      this.say(problem, 'error');
      return;
    }
    const want = this.choices();
    if (want.cameras !== null && want.cameras.length === 0) {
      this.say('Tick at least one camera, or choose "All cameras".', 'error');
      return;
    }
    const wasOn = this.own !== null;
    this.say('Asking the browser…');
    await push.enable(want);
    await this.refresh();
    toast(wasOn ? 'Notifications updated' : 'Notifications on for this device');
  }

  async test(id) {
    if (!id) return;
    const n = await push.sendTest(id);
    toast(n > 0 ? 'Test notification sent' : 'No test was sent (is that device still registered?)', { kind: n > 0 ? 'info' : 'error' });
  }

  /** A test to every device and to ntfy: the check for those without Web Push here. */
  async testAll() {
    const n = await push.sendTest(null);
    toast(n > 0 ? `Test sent (${n} ${n === 1 ? 'notification' : 'notifications'})` : 'Nothing to send to: no device registered, and no ntfy topic set',
      { kind: n > 0 ? 'info' : 'error' });
  }

  async remove(id) {
    if (!id) return;
    const own = id === this.own?.id;
    await push.remove(id);
    await this.refresh();
    toast(own ? 'Notifications off for this device' : 'Device removed');
  }
}
