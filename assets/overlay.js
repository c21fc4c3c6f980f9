// An SVG laid exactly over the live picture, in the picture's own pixels.
//
// The <img> shows the frame with `object-fit: contain`; an SVG whose viewBox
// is the frame's size and whose preserveAspectRatio is `xMidYMid meet` scales
// and centres its drawing the same way, so a shape drawn in picture pixels
// sits on the same spot of the picture at any screen size, letterbox
// included. Coordinates outside this file are normalized: 0..1 of the
// picture, x right and y down, as the server stores them.
//
// Strokes keep their width through `vector-effect: non-scaling-stroke`
// (style.css); what must be a fixed size on screen (point handles, label
// text) is sized with px(), and everything is redrawn when the size changes.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an SVG element with attributes (text through textContent only). */
export function svg(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, String(v));
  }
  if (text !== null) el.textContent = text;
  return el;
}

export class Overlay {
  /**
   * `el` is the page's <svg>, `img` the live picture it covers. `onChange()`
   * is called when the drawing must be redone (new frame size, resize).
   */
  constructor(el, img, { onChange = () => {} } = {}) {
    this.el = el;
    this.img = img;
    this.onChange = onChange;
    // Until the first frame: the size the page reserves for it.
    this.width = img.naturalWidth || Number(img.getAttribute('width')) || 640;
    this.height = img.naturalHeight || Number(img.getAttribute('height')) || 360;
    this.el.setAttribute('viewBox', `0 0 ${this.width} ${this.height}`);
    this.el.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    this.listening = new AbortController();
    const { signal } = this.listening;
    img.addEventListener('load', () => this.measure(), { signal });
    this.resize = new ResizeObserver(() => this.onChange());
    this.resize.observe(el);
  }

  /** Lets go of the page's elements (another camera's view takes them over). */
  destroy() {
    this.listening.abort();
    this.resize.disconnect();
    for (const g of this.el.querySelectorAll('g[data-layer]')) g.replaceChildren();
  }

  /** Adopts the frame's size once a frame is shown (a camera may change it). */
  measure() {
    this.adopt(this.img.naturalWidth, this.img.naturalHeight);
  }

  /**
   * Adopts a picture size given from outside: the live <video> (live-view.js)
   * shows in the same box when it replaces the image.
   */
  adopt(w, h) {
    if (!w || !h || (w === this.width && h === this.height)) return;
    this.width = w;
    this.height = h;
    this.el.setAttribute('viewBox', `0 0 ${w} ${h}`);
    this.onChange();
  }

  /** The page's group for one kind of drawing: 'zones', 'boxes' or 'edit'. */
  layer(name) {
    return this.el.querySelector(`g[data-layer="${name}"]`);
  }

  /** Picture pixels per CSS pixel: sizes a handle or a label for the screen. */
  px(n) {
    const scale = Math.min(this.el.clientWidth / this.width, this.el.clientHeight / this.height);
    return scale > 0 ? n / scale : n;
  }

  /** A normalized point as picture pixels. */
  at([x, y]) {
    return [x * this.width, y * this.height];
  }

  /** The `points` attribute of a polygon or polyline from normalized points. */
  points(list) {
    return list.map((p) => this.at(p).map((v) => v.toFixed(1)).join(',')).join(' ');
  }

  /**
   * The normalized picture point under a pointer event, clamped to the
   * picture (a click in the letterbox lands on its edge).
   */
  toPicture(ev) {
    const ctm = this.el.getScreenCTM();
    if (!ctm) return null;
    const p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse());
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp(p.x / this.width), clamp(p.y / this.height)];
  }
}
