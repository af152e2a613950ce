// COCO run-length encoding in the browser, the format of every mask the API sends and takes.
//
// An RLE is {size: [h, w], counts: string}: run lengths of alternating 0s and 1s (0s first)
// over the mask read column by column (column-major, as pycocotools does), written in
// pycocotools' compressed string: each value in 5-bit groups, least significant first, one
// character per group (48 + group, | 0x20 while more groups follow, 0x10 of the last group is
// the sign); from the fourth value on, each is stored as the difference from the value two
// places before. Masks in the page are row-major Uint8Array(h * w) of 0/1.

export class RleError extends Error {}

/** Run lengths (Float64Array) of a compressed counts string; throws RleError when malformed. */
export function parseCounts(counts) {
  const n = counts.length;
  const runs = new Float64Array(n);
  let m = 0;
  let p = 0;
  while (p < n) {
    let x = 0;
    let scale = 1;
    let c = 0;
    let more = true;
    while (more) {
      if (p >= n) throw new RleError("RLE counts is truncated");
      c = counts.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new RleError(`RLE counts has a bad character at ${p}`);
      x += (c & 0x1f) * scale;
      scale *= 32;
      more = (c & 0x20) !== 0;
      p += 1;
    }
    if (c & 0x10) x -= scale; // sign-extend the last group
    if (m > 2) x += runs[m - 2];
    runs[m] = x;
    m += 1;
  }
  return runs.subarray(0, m);
}

/** The compressed counts string of run lengths (inverse of parseCounts). */
export function runsToString(runs) {
  const out = [];
  for (let i = 0; i < runs.length; i++) {
    let x = runs[i] - (i > 2 ? runs[i - 2] : 0);
    let more = true;
    while (more) {
      // Masks have < 2^31 pixels, so x fits the 32-bit integers of the bitwise operators.
      let c = x & 0x1f;
      x = Math.floor(x / 32);
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out.push(c + 48);
    }
  }
  let text = "";
  for (let i = 0; i < out.length; i += 8192) {
    text += String.fromCharCode.apply(null, out.slice(i, i + 8192));
  }
  return text;
}

/** Checked run lengths of an RLE object. */
export function rleRuns(rle) {
  const [h, w] = rle.size;
  const runs = parseCounts(rle.counts);
  let total = 0;
  for (let i = 0; i < runs.length; i++) {
    if (runs[i] < 0) throw new RleError(`negative run length at run ${i}`);
    total += runs[i];
  }
  if (total !== h * w) throw new RleError(`runs sum to ${total}, not ${h}x${w}`);
  return runs;
}

/**
 * Calls segment(col, row0, row1) for each vertical stretch of foreground pixels (rows
 * [row0, row1) of column col), in column-major order.
 */
export function forEachSegment(runs, h, segment) {
  let pos = 0;
  for (let i = 0; i < runs.length; i++) {
    const len = runs[i];
    if (i & 1) {
      let p = pos;
      const end = pos + len;
      while (p < end) {
        const col = Math.floor(p / h);
        const row = p - col * h;
        const stop = Math.min(h, row + (end - p));
        segment(col, row, stop);
        p += stop - row;
      }
    }
    pos += len;
  }
}

/** Row-major 0/1 Uint8Array(h * w) of an RLE (into `bits` when given, which is cleared). */
export function decode(rle, bits) {
  const [h, w] = rle.size;
  const out = bits || new Uint8Array(h * w);
  if (bits) out.fill(0);
  forEachSegment(rleRuns(rle), h, (col, row0, row1) => {
    for (let r = row0, i = row0 * w + col; r < row1; r++, i += w) out[i] = 1;
  });
  return out;
}

/** The RLE of a row-major mask (any non-zero value is foreground). */
export function encode(bits, h, w) {
  const runs = [];
  let current = 0;
  let length = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0, i = x; y < h; y++, i += w) {
      const v = bits[i] ? 1 : 0;
      if (v !== current) {
        runs.push(length);
        length = 0;
        current = v;
      }
      length += 1;
    }
  }
  runs.push(length);
  return { size: [h, w], counts: runsToString(runs) };
}

/**
 * The RLE's foreground cropped to its bounding box: {x0, y0, x1, y1 (exclusive), data:
 * Uint8Array((x1 - x0) * (y1 - y0)) row-major}, or null for an empty mask. Two passes over the
 * runs (box, then fill), never a full-size array: the mask list holds hundreds of these.
 */
export function decodeCrop(rle) {
  const [h] = rle.size;
  const runs = rleRuns(rle);
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  forEachSegment(runs, h, (col, row0, row1) => {
    if (col < x0) x0 = col;
    if (col > x1) x1 = col;
    if (row0 < y0) y0 = row0;
    if (row1 > y1) y1 = row1;
  });
  if (x1 < 0) return null;
  x1 += 1;
  const cw = x1 - x0;
  const data = new Uint8Array(cw * (y1 - y0));
  forEachSegment(runs, h, (col, row0, row1) => {
    for (let r = row0, i = (row0 - y0) * cw + (col - x0); r < row1; r++, i += cw) data[i] = 1;
  });
  return { x0, y0, x1, y1, data };
}

/** Number of foreground pixels of a row-major mask. */
export function area(bits) {
  let n = 0;
  for (let i = 0; i < bits.length; i++) n += bits[i] ? 1 : 0;
  return n;
}

/** [x0, y0, x1, y1) of the foreground of a row-major mask, or null when empty. */
export function bounds(bits, h, w) {
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i++) {
      if (bits[i]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  return x1 < 0 ? null : [x0, y0, x1 + 1, y1 + 1];
}
