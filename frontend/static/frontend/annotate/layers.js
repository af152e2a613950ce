// Masks turned into pixels. Each mask becomes an offscreen canvas filled by writing RGBA words
// straight into an ImageData (decoded from the RLE, never through per-pixel canvas calls), then
// composited onto the view with drawImage. Untrained models give speckled masks of many small
// runs, so everything here is a single pass over runs or over the mask's bounding box.

import { forEachSegment, rleRuns } from "./rle.js";

export const STYLES = {
  working: { rgb: [30, 144, 255], fill: 120, edge: 255 },
  hover: { rgb: [255, 255, 255], fill: 70, edge: 200 },
  saved: { fill: 95, edge: 230 },
  selected: { fill: 150, edge: 255 },
  prefilled: { rgb: [255, 140, 0], fill: 80, edge: 255, stripes: true },
  proposal: { rgb: [230, 230, 40], fill: 45, edge: 230 },
};

const PALETTE = [
  [228, 26, 28], [77, 175, 74], [152, 78, 163], [255, 127, 0], [166, 86, 40],
  [247, 129, 191], [0, 160, 160], [120, 120, 255], [200, 200, 0], [0, 200, 100],
];

export function paletteColour(id) {
  return PALETTE[Math.abs(id) % PALETTE.length];
}

function word(rgb, alpha) {
  // ImageData is RGBA in memory; a little-endian Uint32 view reads it as ABGR.
  return ((alpha << 24) | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0]) >>> 0;
}

/**
 * Writes the pixels of mask region [x0, x1) x [y0, y1) into `out` (Uint32Array of width
 * `outW`, whose pixel (0, 0) is mask pixel (ox, oy)). `bits` is row-major of width `w` and
 * height `h`; edge pixels (a 4-neighbour outside the mask) are opaque, the inside translucent.
 */
function paint(bits, w, h, x0, y0, x1, y1, out, outW, ox, oy, style) {
  const fill = word(style.rgb, style.fill);
  const fillAlt = word(style.rgb, style.stripes ? Math.round(style.fill / 3) : style.fill);
  const edge = word(style.rgb, style.edge);
  for (let y = y0; y < y1; y++) {
    let i = y * w + x0;
    let o = (y - oy) * outW + (x0 - ox);
    for (let x = x0; x < x1; x++, i++, o++) {
      if (!bits[i]) {
        out[o] = 0;
      } else if (
        x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
        !bits[i - 1] || !bits[i + 1] || !bits[i - w] || !bits[i + w]
      ) {
        out[o] = edge;
      } else {
        out[o] = ((x + y) >> 2) & 1 ? fillAlt : fill;
      }
    }
  }
}

/**
 * A mask of the list, cropped to its box: {canvas, x0, y0, x1, y1, crop} or null when empty.
 * `crop` is {x0, y0, x1, y1, data} from rle.decodeCrop.
 */
export function cropLayer(crop, style) {
  if (!crop) return null;
  const cw = crop.x1 - crop.x0;
  const ch = crop.y1 - crop.y0;
  // Pad by one pixel so the crop's border pixels count as edges.
  const pw = cw + 2;
  const ph = ch + 2;
  const padded = new Uint8Array(pw * ph);
  for (let y = 0; y < ch; y++) padded.set(crop.data.subarray(y * cw, (y + 1) * cw), (y + 1) * pw + 1);
  const canvas = document.createElement("canvas");
  canvas.width = cw;
  canvas.height = ch;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(cw, ch);
  paint(padded, pw, ph, 1, 1, cw + 1, ch + 1, new Uint32Array(image.data.buffer), cw, 1, 1, style);
  ctx.putImageData(image, 0, 0);
  return { canvas, x0: crop.x0, y0: crop.y0, x1: crop.x1, y1: crop.y1, crop };
}

/**
 * A full-size editable mask (the object being made, or the hover preview): row-major `bits`,
 * a canvas of the image's size, and the box [x0, y0, x1, y1) that may hold foreground. Changes
 * redraw only the rectangle they touch (putImageData's dirty rectangle).
 */
export class MaskLayer {
  constructor(w, h, style) {
    this.w = w;
    this.h = h;
    this.style = style;
    this.bits = new Uint8Array(w * h);
    this.canvas = document.createElement("canvas");
    this.canvas.width = w;
    this.canvas.height = h;
    this.ctx = this.canvas.getContext("2d");
    this.image = this.ctx.createImageData(w, h);
    this.words = new Uint32Array(this.image.data.buffer);
    this.box = null;
  }

  /** Redraws [x0, x1) x [y0, y1), grown by one pixel (edges of the neighbours change too). */
  render(x0, y0, x1, y1) {
    const ax = Math.max(0, Math.floor(x0) - 1);
    const ay = Math.max(0, Math.floor(y0) - 1);
    const bx = Math.min(this.w, Math.ceil(x1) + 1);
    const by = Math.min(this.h, Math.ceil(y1) + 1);
    if (bx <= ax || by <= ay) return;
    paint(this.bits, this.w, this.h, ax, ay, bx, by, this.words, this.w, 0, 0, this.style);
    this.ctx.putImageData(this.image, 0, 0, ax, ay, bx - ax, by - ay);
  }

  isEmpty() {
    if (!this.box) return true;
    const [x0, y0, x1, y1] = this.box;
    for (let y = y0; y < y1; y++) {
      for (let i = y * this.w + x0, end = y * this.w + x1; i < end; i++) if (this.bits[i]) return false;
    }
    return true;
  }

  clear() {
    const old = this.box;
    this.bits.fill(0);
    this.box = null;
    if (old) this.render(...old);
  }

  /** Replaces the mask with an RLE's, decoding its runs straight into bits and pixels. */
  setRle(rle) {
    const old = this.box;
    this.bits.fill(0);
    const { w, bits } = this;
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -1;
    let y1 = -1;
    forEachSegment(rleRuns(rle), this.h, (col, row0, row1) => {
      for (let r = row0, i = row0 * w + col; r < row1; r++, i += w) bits[i] = 1;
      if (col < x0) x0 = col;
      if (col > x1) x1 = col;
      if (row0 < y0) y0 = row0;
      if (row1 > y1) y1 = row1;
    });
    this.box = x1 < 0 ? null : [x0, y0, x1 + 1, y1];
    this.renderUnion(old, this.box);
  }

  /** Replaces the mask with a copy of row-major `bits`. */
  setBits(bits, box) {
    const old = this.box;
    this.bits.set(bits);
    this.box = box;
    this.renderUnion(old, box);
  }

  renderUnion(a, b) {
    if (!a && !b) return;
    const boxes = [a, b].filter(Boolean);
    this.render(
      Math.min(...boxes.map((r) => r[0])),
      Math.min(...boxes.map((r) => r[1])),
      Math.max(...boxes.map((r) => r[2])),
      Math.max(...boxes.map((r) => r[3])),
    );
  }

  /** Sets (value 1) or clears (0) a disc of radius r at (cx, cy); returns its box or null. */
  stamp(cx, cy, r, value) {
    const x0 = Math.max(0, Math.floor(cx - r));
    const y0 = Math.max(0, Math.floor(cy - r));
    const x1 = Math.min(this.w, Math.ceil(cx + r) + 1);
    const y1 = Math.min(this.h, Math.ceil(cy + r) + 1);
    if (x1 <= x0 || y1 <= y0) return null;
    const r2 = r * r;
    for (let y = y0; y < y1; y++) {
      const dy = y + 0.5 - cy;
      for (let x = x0, i = y * this.w + x0; x < x1; x++, i++) {
        const dx = x + 0.5 - cx;
        if (dx * dx + dy * dy <= r2) this.bits[i] = value;
      }
    }
    if (value) {
      this.box = this.box
        ? [Math.min(this.box[0], x0), Math.min(this.box[1], y0), Math.max(this.box[2], x1), Math.max(this.box[3], y1)]
        : [x0, y0, x1, y1];
    }
    return [x0, y0, x1, y1];
  }

  /** Stamps discs along the segment a -> b (a stroke between two pointer events). */
  line(a, b, r, value) {
    const dist = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const steps = Math.max(1, Math.ceil(dist / Math.max(0.5, r / 2)));
    let box = null;
    for (let s = 0; s <= steps; s++) {
      const t = s / steps;
      const d = this.stamp(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, r, value);
      if (d) box = box ? [Math.min(box[0], d[0]), Math.min(box[1], d[1]), Math.max(box[2], d[2]), Math.max(box[3], d[3])] : d;
    }
    if (box) this.render(...box);
    return box;
  }
}
