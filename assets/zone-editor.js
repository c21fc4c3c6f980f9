// The mask and zone editor: draw on the live picture with a mouse, a pen or
// a finger (pointer events), then save to the camera's settings.
//
// It edits a copy of the saved shapes; Cancel drops it, Save posts it whole
// (`mask`, `zones`, `required_zones`) to the camera's /config. The server
// checks every rule (points, names, crossings) and its message is shown as
// is, with the copy left on screen to fix. A tap adds a point; tapping the
// first point (or "Close shape") closes the polygon; a point of the shape
// being drawn or of the selected one can be dragged; tapping a shape selects
// it for Delete or, for a zone, renaming. While the editor is open the
// overlay takes the pointer and `touch-action: none`, so drawing never
// scrolls the page; closed, the picture behaves as before.

import { $ } from './util.js';
import { postJSON } from './api.js';
import { toast } from './toast.js';
import { svg } from './overlay.js';
import { cloneModel, drawShapes } from './zones.js';

// A press that moves less than this (CSS px) is a tap, not a drag.
const TAP_SLOP_PX = 4;
const HANDLE_PX = 7;
const HANDLE_TOUCH_PX = 12;

/** Normalized coordinates with four decimals: a tenth of a pixel of a 4K picture. */
const tidy = (points) => points.map(([x, y]) => [Number(x.toFixed(4)), Number(y.toFixed(4))]);

export class ZoneEditor {
  /** `zones` is the view's Zones (the saved shapes), `base` the camera's route prefix. */
  constructor(overlay, zones, { base }) {
    this.overlay = overlay;
    this.zones = zones;
    this.base = base;
    this.open = false;
    this.closed = false;
    this.model = null; // the copy being edited
    this.drawing = null; // { points } of the polygon under way
    this.selected = null; // { kind: 'mask' | 'zone', index }
    this.drag = null;
    this.saving = false;

    this.el = overlay.el;
    this.button = $('zones-edit');
    this.panel = $('zones-editor');
    this.nameInput = $('zones-name');
    this.requiredBox = $('zones-required');
    this.hint = $('zones-hint');
    this.buttons = {
      close: $('zones-close'),
      undo: $('zones-undo'),
      del: $('zones-delete'),
      save: $('zones-save'),
      cancel: $('zones-cancel'),
    };
    this.listening = new AbortController();
    this.bind();
    this.hide();
  }

  destroy() {
    this.closed = true;
    this.hide();
    this.listening.abort();
  }

  // ---- open, save, cancel ------------------------------------------------

  show() {
    this.open = true;
    this.model = cloneModel(this.zones.saved);
    this.drawing = null;
    this.selected = null;
    this.zones.editing = true;
    this.panel.hidden = false;
    this.button.setAttribute('aria-pressed', 'true');
    this.el.classList.add('editing');
    this.nameInput.value = this.freshName();
    this.requiredBox.checked = false;
    this.fields();
    this.render();
  }

  hide() {
    this.open = false;
    this.model = null;
    this.drawing = null;
    this.selected = null;
    this.drag = null;
    this.panel.hidden = true;
    this.button.setAttribute('aria-pressed', 'false');
    this.el.classList.remove('editing');
    this.overlay.layer('edit').replaceChildren();
    this.zones.editing = false;
    this.zones.render();
  }

  async save() {
    if (this.saving) return;
    if (this.drawing) {
      if (this.drawing.points.length < 3) {
        toast('Finish the shape you are drawing (3 points at least) or delete it, then save.', { kind: 'error' });
        return;
      }
      this.finish();
    }
    const body = {
      mask: this.model.mask.map(tidy),
      zones: this.model.zones.map((z) => ({ name: z.name, points: tidy(z.points) })),
      required_zones: this.model.zones.filter((z) => z.required).map((z) => z.name),
    };
    this.saving = true;
    this.buttons.save.setAttribute('aria-disabled', 'true');
    try {
      const reply = await postJSON(`${this.base}/config`, body);
      if (this.closed || !this.open) return;
      // The reply is the whole config; the `config` event brings it too.
      this.zones.apply('mask' in (reply || {}) ? reply : body);
      this.hide();
      toast('Zones saved');
    } catch (e) {
      if (this.closed) return;
      // The drawing stays: the person fixes what the server named.
      toast(`Zones not saved: ${e.message}`, { kind: 'error' });
    } finally {
      this.saving = false;
      this.buttons.save.removeAttribute('aria-disabled');
    }
  }

  // ---- what the buttons and fields do -----------------------------------

  kind() {
    return document.querySelector('input[name="zones-kind"]:checked')?.value === 'zone' ? 'zone' : 'mask';
  }

  setKind(kind) {
    $(`zones-kind-${kind}`).checked = true;
    this.fields();
  }

  /** The first free name of the form zone1, zone2, ... */
  freshName() {
    const taken = new Set((this.model?.zones || []).map((z) => z.name));
    let i = 1;
    while (taken.has(`zone${i}`)) i++;
    return `zone${i}`;
  }

  /** Closes the polygon under way into the model and selects it. */
  finish() {
    const { points } = this.drawing;
    if (points.length < 3) return;
    this.drawing = null;
    if (this.kind() === 'mask') {
      this.model.mask.push(points);
      this.selected = { kind: 'mask', index: this.model.mask.length - 1 };
    } else {
      const name = this.nameInput.value.trim() || this.freshName();
      this.model.zones.push({ name, points, required: this.requiredBox.checked });
      this.selected = { kind: 'zone', index: this.model.zones.length - 1 };
    }
    this.render();
  }

  select(sel) {
    this.selected = sel;
    if (sel) {
      this.setKind(sel.kind);
      if (sel.kind === 'zone') {
        const z = this.model.zones[sel.index];
        this.nameInput.value = z.name;
        this.requiredBox.checked = z.required;
      }
    }
    this.render();
  }

  /** Starts a polygon; a zone gets a fresh name unless one was typed for it. */
  begin(point) {
    if (this.selected) {
      if (this.selected.kind === 'zone') {
        this.nameInput.value = this.freshName();
        this.requiredBox.checked = false;
      }
      this.selected = null;
    }
    this.drawing = { points: [point] };
  }

  remove() {
    if (this.drawing) {
      this.drawing = null;
    } else if (this.selected) {
      const list = this.selected.kind === 'mask' ? this.model.mask : this.model.zones;
      list.splice(this.selected.index, 1);
      this.selected = null;
      this.nameInput.value = this.freshName();
    }
    this.render();
  }

  undo() {
    if (!this.drawing) return;
    this.drawing.points.pop();
    if (this.drawing.points.length === 0) this.drawing = null;
    this.render();
  }

  selectedZone() {
    return this.selected?.kind === 'zone' ? this.model.zones[this.selected.index] : null;
  }

  fields() {
    $('zones-zone-fields').hidden = this.kind() !== 'zone';
  }

  bind() {
    const { signal } = this.listening;
    const on = (el, type, fn) => el.addEventListener(type, fn, { signal });
    on(this.button, 'click', () => (this.open ? this.hide() : this.show()));
    on(this.buttons.cancel, 'click', () => this.hide());
    on(this.buttons.save, 'click', () => this.save());
    on(this.buttons.close, 'click', () => this.finish());
    on(this.buttons.undo, 'click', () => this.undo());
    on(this.buttons.del, 'click', () => this.remove());
    for (const radio of document.querySelectorAll('input[name="zones-kind"]')) {
      on(radio, 'change', () => {
        // A shape keeps its kind: choosing another one starts anew.
        if (this.selected && this.selected.kind !== this.kind()) {
          this.selected = null;
          if (this.kind() === 'zone') this.nameInput.value = this.freshName();
        }
        this.fields();
        this.render();
      });
    }
    on(this.nameInput, 'input', () => {
      const z = this.selectedZone();
      if (z) {
        z.name = this.nameInput.value.trim();
        this.render();
      }
    });
    on(this.requiredBox, 'change', () => {
      const z = this.selectedZone();
      if (z) {
        z.required = this.requiredBox.checked;
        this.render();
      }
    });
    on(this.el, 'pointerdown', (e) => this.pointerDown(e));
    on(this.el, 'pointermove', (e) => this.pointerMove(e));
    on(this.el, 'pointerup', (e) => this.pointerUp(e));
    on(this.el, 'pointercancel', () => { this.drag = null; });
  }

  // ---- drawing with the pointer ------------------------------------------

  pointerDown(e) {
    if (!this.open || (e.pointerType === 'mouse' && e.button !== 0)) return;
    const point = this.overlay.toPicture(e);
    if (!point) return;
    e.preventDefault();
    const target = e.target.closest('[data-kind]');
    const kind = target?.dataset.kind;
    if (kind === 'handle') {
      const owner = target.dataset.owner;
      const index = Number(target.dataset.index);
      const points = owner === 'drawing' ? this.drawing.points : this.shapePoints(this.selected);
      this.drag = { points, index, x: e.clientX, y: e.clientY, moved: false, closes: owner === 'drawing' && index === 0 };
      this.el.setPointerCapture(e.pointerId);
      return;
    }
    if (!this.drawing && (kind === 'mask' || kind === 'zone')) {
      this.select({ kind, index: Number(target.dataset.index) });
      return;
    }
    if (this.drawing) this.drawing.points.push(point);
    else this.begin(point);
    this.render();
  }

  pointerMove(e) {
    const d = this.drag;
    if (!d) return;
    if (!d.moved && Math.hypot(e.clientX - d.x, e.clientY - d.y) < TAP_SLOP_PX) return;
    const point = this.overlay.toPicture(e);
    if (!point) return;
    d.moved = true;
    d.points[d.index] = point;
    this.render();
  }

  pointerUp() {
    const d = this.drag;
    this.drag = null;
    // A tap on the first point of the shape under way closes it.
    if (d && !d.moved && d.closes && this.drawing?.points.length >= 3) this.finish();
  }

  shapePoints(sel) {
    if (!sel) return [];
    return sel.kind === 'mask' ? this.model.mask[sel.index] : this.model.zones[sel.index].points;
  }

  // ---- drawing on screen -------------------------------------------------

  render() {
    if (!this.open) return;
    const o = this.overlay;
    const zonesLayer = o.layer('zones');
    zonesLayer.removeAttribute('hidden');
    drawShapes(o, zonesLayer, this.model, { selected: this.selected });

    const r = o.px(matchMedia('(pointer: coarse)').matches ? HANDLE_TOUCH_PX : HANDLE_PX);
    const items = [];
    const handles = (points, owner) => points.map((p, index) => {
      const [cx, cy] = o.at(p);
      return svg('circle', {
        class: `handle${owner === 'drawing' && index === 0 ? ' first' : ''}`, cx, cy, r,
        dataset: { kind: 'handle', owner, index },
      });
    });
    if (this.selected) items.push(...handles(this.shapePoints(this.selected), 'selected'));
    if (this.drawing) {
      const pts = this.drawing.points;
      items.push(svg('polyline', { class: `drawing ${this.kind()}`, points: o.points(pts), dataset: { kind: 'drawing' } }));
      items.push(...handles(pts, 'drawing'));
    }
    o.layer('edit').replaceChildren(...items);
    this.status();
  }

  /** Buttons that can do something now, and a line saying what to do next. */
  status() {
    const n = this.drawing?.points.length ?? 0;
    this.buttons.close.disabled = n < 3;
    this.buttons.undo.disabled = n === 0;
    this.buttons.del.disabled = !this.drawing && !this.selected;
    const what = this.kind() === 'mask' ? 'mask (ignored by motion)' : 'zone';
    if (n === 0 && this.selected) {
      this.hint.textContent = 'Drag a point to move it, or Delete the selected shape. Tap the picture to start a new one.';
    } else if (n === 0) {
      this.hint.textContent = `Tap the picture to start a ${what}; tap a shape to select it.`;
    } else if (n < 3) {
      this.hint.textContent = `${n} point${n === 1 ? '' : 's'}: add at least ${3 - n} more.`;
    } else {
      this.hint.textContent = `${n} points: tap the first point or "Close shape" to finish.`;
    }
  }
}
