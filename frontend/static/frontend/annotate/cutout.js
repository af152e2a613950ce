// Cut-out: the selected masks' pixels of the image as a transparent PNG cropped to their box
// (the Segment Anything demo's "Cut-Outs"). Alpha is 255 inside the union of the masks and 0
// outside.

/** Union of crops ({x0, y0, x1, y1, data}) as one crop, or null when all are empty. */
export function unionCrop(crops) {
  const parts = crops.filter(Boolean);
  if (!parts.length) return null;
  const x0 = Math.min(...parts.map((c) => c.x0));
  const y0 = Math.min(...parts.map((c) => c.y0));
  const x1 = Math.max(...parts.map((c) => c.x1));
  const y1 = Math.max(...parts.map((c) => c.y1));
  const w = x1 - x0;
  const data = new Uint8Array(w * (y1 - y0));
  for (const c of parts) {
    const cw = c.x1 - c.x0;
    for (let y = c.y0; y < c.y1; y++) {
      const src = (y - c.y0) * cw;
      const dst = (y - y0) * w + (c.x0 - x0);
      for (let x = 0; x < cw; x++) if (c.data[src + x]) data[dst + x] = 1;
    }
  }
  return { x0, y0, x1, y1, data };
}

/** A crop of a full-size row-major mask inside box [x0, y0, x1, y1). */
export function cropOf(bits, width, box) {
  if (!box) return null;
  const [x0, y0, x1, y1] = box;
  const w = x1 - x0;
  const data = new Uint8Array(w * (y1 - y0));
  for (let y = y0; y < y1; y++) data.set(bits.subarray(y * width + x0, y * width + x1), (y - y0) * w);
  return { x0, y0, x1, y1, data };
}

/** The PNG blob of the image's pixels under `crop`, transparent elsewhere. */
export function cutoutBlob(image, crop) {
  const w = crop.x1 - crop.x0;
  const h = crop.y1 - crop.y0;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, -crop.x0, -crop.y0);
  const pixels = ctx.getImageData(0, 0, w, h);
  for (let i = 0; i < crop.data.length; i++) pixels.data[i * 4 + 3] = crop.data[i] ? 255 : 0;
  ctx.putImageData(pixels, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

export async function downloadCutout(image, crop, filename) {
  const blob = await cutoutBlob(image, crop);
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
