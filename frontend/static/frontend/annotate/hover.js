// Hover preview: resting the pointer on the image shows the mask a click there would make
// (the Segment Anything demo's "hover & click"). Requests are debounced and only the latest
// answer is shown; a click on the very point a preview was computed for uses that answer at
// once instead of asking again.

export const HOVER_DELAY_MS = 90;

export class HoverPreview {
  constructor({ api, imageId, editor, layer, onChange, delayMs = HOVER_DELAY_MS }) {
    this.api = api;
    this.imageId = imageId;
    this.editor = editor;
    this.layer = layer;
    this.onChange = onChange;
    this.delayMs = delayMs;
    this.enabled = true;
    this.visible = false;
    this.timer = null;
    this.seq = 0;
    this.last = null; // {key, answer}
    this.requests = 0;
  }

  toggle() {
    this.enabled = !this.enabled;
    if (!this.enabled) this.hide();
    return this.enabled;
  }

  schedule(x, y) {
    if (!this.enabled) return;
    clearTimeout(this.timer);
    const seq = ++this.seq;
    if (this.visible) {
      this.visible = false;
      this.onChange();
    }
    this.timer = setTimeout(() => this.run(x, y, seq), this.delayMs);
  }

  hide() {
    clearTimeout(this.timer);
    this.seq += 1;
    if (this.visible) {
      this.visible = false;
      this.onChange();
    }
  }

  async run(x, y, seq) {
    if (this.editor.busy) {
      // A click is being answered: the preview would be out of date; try again shortly.
      this.timer = setTimeout(() => seq === this.seq && this.run(x, y, seq), this.delayMs);
      return;
    }
    const body = this.editor.predictBody([x, y]);
    const key = JSON.stringify(body);
    let answer = this.last && this.last.key === key ? this.last.answer : null;
    if (!answer) {
      try {
        this.requests += 1;
        answer = await this.api("POST", `/api/images/${this.imageId}/predict/`, body);
      } catch {
        return; // a preview is optional: a click still asks for real
      }
    }
    if (seq !== this.seq) return;
    this.last = { key, answer };
    let best = answer.masks[0];
    for (const mask of answer.masks) if (mask.predicted_iou > best.predicted_iou) best = mask;
    this.layer.setRle(best.rle);
    this.visible = true;
    this.onChange();
  }

  /** The preview's answer when a click at (x, y) would send exactly the same request. */
  answerFor(x, y) {
    if (!this.last) return null;
    return this.last.key === JSON.stringify(this.editor.predictBody([x, y])) ? this.last.answer : null;
  }
}
