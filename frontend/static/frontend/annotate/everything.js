// "Everything": the model's masks for the whole image as proposals, drawn apart from the saved
// masks. Clicking inside one takes it into the editor (to refine or accept with Enter);
// "Accept all" saves them all. Nothing is stored until then.

import { cropLayer, STYLES } from "./layers.js";
import { decodeCrop } from "./rle.js";

export const CONFIDENCE = {
  paper: {},
  relaxed: { pred_iou_thresh: 0.5, stability_score_thresh: 0.8 },
  all: { pred_iou_thresh: 0, stability_score_thresh: 0 },
};

export class Proposals {
  constructor({ api, imageId, onChange }) {
    this.api = api;
    this.imageId = imageId;
    this.onChange = onChange;
    this.items = [];
    this.running = false;
    this.answer = null;
  }

  async run(pointsPerSide, confidence) {
    this.running = true;
    this.confidence = confidence;
    this.onChange();
    try {
      const answer = await this.api("POST", `/api/images/${this.imageId}/everything/`, {
        points_per_side: pointsPerSide,
        ...(CONFIDENCE[confidence] || {}),
      });
      this.answer = answer;
      this.items = answer.masks.map((mask) => {
        const crop = decodeCrop(mask.rle);
        return { mask, crop, layer: cropLayer(crop, STYLES.proposal) };
      });
      return answer;
    } finally {
      this.running = false;
      this.onChange();
    }
  }

  /** Index of the smallest proposal holding image pixel (x, y), or -1. */
  at(x, y) {
    let best = -1;
    this.items.forEach((item, i) => {
      const c = item.crop;
      if (!c || x < c.x0 || y < c.y0 || x >= c.x1 || y >= c.y1) return;
      if (!c.data[(y - c.y0) * (c.x1 - c.x0) + (x - c.x0)]) return;
      if (best < 0 || item.mask.area < this.items[best].mask.area) best = i;
    });
    return best;
  }

  take(index) {
    const [item] = this.items.splice(index, 1);
    this.onChange();
    return item;
  }

  clear() {
    this.items = [];
    this.answer = null;
    this.onChange();
  }
}
