// Live motion level sparkline: the `change` of the last minute of `level`
// events as an area, the threshold as a horizontal line.

const WINDOW_S = 60;
const MAX_POINTS = 400;

export class LevelGraph {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = [];
    this.threshold = null;
    this.queued = false;
    // Redraw at the right pixel size when the layout or the zoom changes.
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(canvas);
    this.listening = new AbortController();
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.draw(), { signal: this.listening.signal });
  }

  /** Lets go of the canvas (another camera's graph takes it over). */
  destroy() {
    this.resize.disconnect();
    this.listening.abort();
    this.points = [];
    this.threshold = null;
    this.destroyed = true;
  }

  add(ts, change) {
    if (!Number.isFinite(ts) || !Number.isFinite(change)) return;
    this.points.push({ ts, change });
    if (this.points.length > MAX_POINTS) this.points.shift();
    this.schedule();
  }

  setThreshold(value) {
    this.threshold = value;
    this.schedule();
  }

  /** Coalesces bursts of updates into one draw per animation frame. */
  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.draw();
    });
  }

  draw() {
    if (this.destroyed) return;
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const hgt = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== hgt) {
      c.width = w;
      c.height = hgt;
    }
    const ctx = c.getContext('2d');
    ctx.clearRect(0, 0, w, hgt);
    const css = getComputedStyle(c);
    const lineColor = css.getPropertyValue('--graph-line').trim() || '#2a7';
    const fillColor = css.getPropertyValue('--graph-fill').trim() || 'rgba(34,170,119,.25)';
    const thrColor = css.getPropertyValue('--graph-threshold').trim() || '#d33';

    // Time runs from the newest point back, so a server clock far from the
    // browser's does not push the curve off the canvas.
    const now = this.points.length ? this.points[this.points.length - 1].ts : 0;
    const visible = this.points.filter((p) => p.ts >= now - WINDOW_S);
    const peak = visible.reduce((m, p) => Math.max(m, p.change), 0);
    // Scale so both the curve and the threshold fit, with a little headroom.
    const top = Math.min(100, Math.max(5, peak * 1.2, (this.threshold ?? 0) * 1.25));
    const x = (ts) => w - ((now - ts) / WINDOW_S) * w;
    const y = (v) => hgt - (Math.min(v, top) / top) * (hgt - 2 * dpr) - dpr;

    if (visible.length > 1) {
      ctx.beginPath();
      ctx.moveTo(x(visible[0].ts), hgt);
      for (const p of visible) ctx.lineTo(x(p.ts), y(p.change));
      ctx.lineTo(x(visible[visible.length - 1].ts), hgt);
      ctx.closePath();
      ctx.fillStyle = fillColor;
      ctx.fill();
      ctx.beginPath();
      visible.forEach((p, i) => (i ? ctx.lineTo(x(p.ts), y(p.change)) : ctx.moveTo(x(p.ts), y(p.change))));
      ctx.strokeStyle = lineColor;
      ctx.lineWidth = 1.5 * dpr;
      ctx.stroke();
    }
    if (this.threshold !== null) {
      const ty = Math.round(y(this.threshold)) + 0.5;
      ctx.setLineDash([4 * dpr, 3 * dpr]);
      ctx.beginPath();
      ctx.moveTo(0, ty);
      ctx.lineTo(w, ty);
      ctx.strokeStyle = thrColor;
      ctx.lineWidth = dpr;
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }
}
