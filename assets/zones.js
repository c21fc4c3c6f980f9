// The camera's motion mask and zones, outlined over the live picture.
//
// The server keeps them in the camera's settings (`mask`, `zones`,
// `required_zones` in /config), so they arrive with the config the view reads
// at start and with every `config` event: a change saved on one dashboard
// shows on all of them. "Show zones" hides the outlines; the choice is kept
// per camera in this browser. The editor (zone-editor.js) draws its unsaved
// copy through the same code.

import { svg } from './overlay.js';

// Zone outlines cycle through these; each is readable on a dark halo.
const ZONE_COLOURS = ['#3da5ff', '#ffb020', '#3ccf74', '#c78bff', '#22d3d8', '#ff7ab6'];
const LABEL_PX = 13;

/**
 * The shapes of a config body, in the editor's terms: mask polygons, and
 * zones that carry their own `required` flag. Absent keys (an older server)
 * are empty.
 */
export function modelFrom(cfg) {
  const required = new Set(Array.isArray(cfg.required_zones) ? cfg.required_zones : []);
  const mask = Array.isArray(cfg.mask) ? cfg.mask.map((poly) => poly.map(([x, y]) => [x, y])) : [];
  const zones = Array.isArray(cfg.zones)
    ? cfg.zones.map((z) => ({ name: z.name, points: z.points.map(([x, y]) => [x, y]), required: required.has(z.name) }))
    : [];
  return { mask, zones };
}

/** A copy the editor may change freely. */
export function cloneModel(m) {
  return {
    mask: m.mask.map((poly) => poly.map(([x, y]) => [x, y])),
    zones: m.zones.map((z) => ({ ...z, points: z.points.map(([x, y]) => [x, y]) })),
  };
}

export function zoneColour(i) {
  return ZONE_COLOURS[i % ZONE_COLOURS.length];
}

/** Where a polygon's label goes: the middle of its points. */
function middle(points) {
  const n = points.length || 1;
  return points.reduce(([sx, sy], [x, y]) => [sx + x / n, sy + y / n], [0, 0]);
}

/**
 * Draws `model` into `layer`. `selected` ({kind, index}) is drawn
 * highlighted; the editor adds its handles itself.
 */
export function drawShapes(overlay, layer, model, { selected = null } = {}) {
  const isSelected = (kind, index) => selected?.kind === kind && selected.index === index;
  const hatch = overlay.px(8);
  const items = [
    // The mask's hatching, sized for the screen (picture pixels otherwise).
    svg('defs', {}),
  ];
  const pattern = svg('pattern', {
    id: 'mask-hatch', patternUnits: 'userSpaceOnUse', width: hatch, height: hatch, patternTransform: 'rotate(45)',
  });
  pattern.append(
    svg('rect', { width: hatch, height: hatch, class: 'mask-fill' }),
    svg('rect', { width: hatch / 2, height: hatch, class: 'mask-stripe' }),
  );
  items[0].append(pattern);

  model.mask.forEach((points, index) => {
    items.push(svg('polygon', {
      class: `shape mask${isSelected('mask', index) ? ' selected' : ''}`,
      points: overlay.points(points),
      fill: 'url(#mask-hatch)',
      dataset: { kind: 'mask', index },
    }));
  });

  model.zones.forEach((zone, index) => {
    const colour = zoneColour(index);
    const pts = overlay.points(zone.points);
    const g = svg('g', { class: 'zone', dataset: { name: zone.name } });
    g.style.setProperty('--zone', colour);
    g.append(
      svg('polygon', { class: 'halo', points: pts }),
      svg('polygon', {
        class: `shape zone${zone.required ? ' required' : ''}${isSelected('zone', index) ? ' selected' : ''}`,
        points: pts,
        dataset: { kind: 'zone', index, name: zone.name, required: zone.required ? 'true' : 'false' },
      }),
    );
    const [x, y] = overlay.at(middle(zone.points));
    g.append(svg('text', {
      class: 'zone-label', x, y, 'font-size': overlay.px(LABEL_PX), 'stroke-width': overlay.px(3), 'text-anchor': 'middle', 'dominant-baseline': 'middle',
    }, zone.required ? `${zone.name} (required)` : zone.name));
    items.push(g);
  });
  layer.replaceChildren(...items);
}

export class Zones {
  /**
   * `overlay` is the view's Overlay; `toggle` the "Show zones" checkbox;
   * `key` names this camera in the browser's storage.
   */
  constructor(overlay, toggle, { key }) {
    this.overlay = overlay;
    this.layer = overlay.layer('zones');
    this.toggle = toggle;
    this.storageKey = `lookout.zones-shown.${key}`;
    this.saved = { mask: [], zones: [] };
    // Set by the editor while it shows its own copy instead.
    this.editing = false;
    this.listening = new AbortController();
    this.toggle.checked = this.remembered();
    this.toggle.addEventListener('change', () => {
      this.remember(this.toggle.checked);
      this.render();
    }, { signal: this.listening.signal });
    this.render();
  }

  destroy() {
    this.listening.abort();
    this.layer.replaceChildren();
  }

  remembered() {
    try {
      return localStorage.getItem(this.storageKey) !== '0';
    } catch {
      return true; // storage switched off: shown, as by default
    }
  }

  remember(shown) {
    try {
      localStorage.setItem(this.storageKey, shown ? '1' : '0');
    } catch {
      // Not kept across loads then; the toggle still works.
    }
  }

  /** Takes the shapes of a config body (the start-up read or a `config` event). */
  apply(cfg) {
    if (!('mask' in cfg) && !('zones' in cfg)) return; // a server without zones
    this.saved = modelFrom(cfg);
    this.render();
  }

  render() {
    if (this.editing) return;
    // SVG elements have no `hidden` property; the attribute works with the page's CSS.
    this.layer.toggleAttribute('hidden', !this.toggle.checked);
    drawShapes(this.overlay, this.layer, this.saved);
  }
}
