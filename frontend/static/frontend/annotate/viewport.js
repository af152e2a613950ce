// Pan and zoom: screen = image * scale + (tx, ty), in CSS pixels of the canvas element; the
// canvas backing store is devicePixelRatio times larger so masks stay sharp.

export class Viewport {
  constructor(canvas, imageWidth, imageHeight) {
    this.canvas = canvas;
    this.w = imageWidth;
    this.h = imageHeight;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.dpr = window.devicePixelRatio || 1;
    this.moved = false; // the annotator zoomed or panned: a resize keeps their view
  }

  /** Sizes the backing store to the element; returns true when it changed. */
  resize() {
    const rect = this.canvas.getBoundingClientRect();
    const width = Math.max(1, Math.round(rect.width * this.dpr));
    const height = Math.max(1, Math.round(rect.height * this.dpr));
    if (this.canvas.width === width && this.canvas.height === height) return false;
    this.canvas.width = width;
    this.canvas.height = height;
    return true;
  }

  cssSize() {
    return [this.canvas.width / this.dpr, this.canvas.height / this.dpr];
  }

  fit() {
    this.moved = false;
    const [cw, ch] = this.cssSize();
    this.scale = Math.min(cw / this.w, ch / this.h) * 0.96;
    this.tx = (cw - this.w * this.scale) / 2;
    this.ty = (ch - this.h * this.scale) / 2;
  }

  /** Zooms by `factor` keeping the image point under (sx, sy) (CSS pixels) where it is. */
  zoomAt(sx, sy, factor) {
    this.moved = true;
    const next = Math.min(64, Math.max(0.02, this.scale * factor));
    const k = next / this.scale;
    this.tx = sx - (sx - this.tx) * k;
    this.ty = sy - (sy - this.ty) * k;
    this.scale = next;
  }

  zoomCentre(factor) {
    const [cw, ch] = this.cssSize();
    this.zoomAt(cw / 2, ch / 2, factor);
  }

  panBy(dx, dy) {
    this.moved = true;
    this.tx += dx;
    this.ty += dy;
  }

  /** Image coordinates of a pointer event (or {clientX, clientY}). */
  toImage(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [
      (event.clientX - rect.left - this.tx) / this.scale,
      (event.clientY - rect.top - this.ty) / this.scale,
    ];
  }

  /** Page (client) coordinates of an image point: what tests click. */
  toClient(x, y) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: rect.left + this.tx + x * this.scale, y: rect.top + this.ty + y * this.scale };
  }

  inside(x, y) {
    return x >= 0 && y >= 0 && x < this.w && y < this.h;
  }

  /** Puts the image transform on a 2-D context. */
  apply(ctx) {
    const s = this.scale * this.dpr;
    ctx.setTransform(s, 0, 0, s, this.tx * this.dpr, this.ty * this.dpr);
    // Zoomed in, pixels are shown as squares so brush work is precise.
    ctx.imageSmoothingEnabled = this.scale < 2;
  }
}
