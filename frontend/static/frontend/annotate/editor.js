// The object being made: its clicks (+/-), box, the model's candidate masks, brush and eraser
// strokes, and undo/redo over all of them.
//
// The mask shown is the chosen candidate (or the mask being re-edited) with the strokes painted
// on top, so a new click re-asks the model and keeps the hand-made fixes. Each refinement sends
// the chosen candidate's logits_id back as mask_input_id: the model improves the previous mask
// instead of starting over. A loaded mask (Fix or Edit of a saved one) is the mask prompt of the
// first click on it too: its logits when this page still has them, else its id as refine_mask
// (the server turns the stored pixels into the prompt), so that click edits the mask instead of
// replacing it with three fresh candidates. Predictions run one at a time; clicks made meanwhile
// are sent together in the next request.

import { encode } from "./rle.js";

function bestIndex(masks) {
  let best = 0;
  masks.forEach((mask, i) => {
    if (mask.predicted_iou > masks[best].predicted_iou) best = i;
  });
  return best;
}

/** The candidates' indices, largest mask first: the paper's whole / part / sub-part. The model's
 *  three outputs come in no fixed order of size (training takes the best of the three, whichever
 *  slot it is in), so the buttons, the 1 2 3 keys and cycling follow the masks' areas; ``chosen``
 *  stays the model's index, which is what a saved prompt records. */
export function sizeOrder(candidates) {
  return candidates
    .map((c, i) => [c.area ?? 0, i])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .map(([, i]) => i);
}

const EMPTY = () => ({ points: [], labels: [], box: null, candidates: [], chosen: 0, strokes: [], base: null });

export class ObjectEditor {
  constructor({ api, imageId, layer, clock, onChange, onPredicted, onError }) {
    this.api = api;
    this.imageId = imageId;
    this.layer = layer;
    this.clock = clock;
    this.onChange = onChange;
    this.onPredicted = onPredicted;
    this.onError = onError;
    this.state = EMPTY();
    this.history = [];
    this.future = [];
    this.editing = null; // {id, version, seconds, source}: a saved mask loaded for re-editing
    this.clientId = null;
    this.startMs = null;
    this.busy = false;
    this.again = null; // click time of a prediction asked for while one was running
    this.stroke = null;
  }

  isEmpty() {
    const s = this.state;
    return !s.points.length && !s.box && !s.candidates.length && !s.strokes.length && !s.base;
  }

  hasPrompts() {
    return this.state.points.length > 0 || this.state.box !== null;
  }

  secondsSoFar() {
    return this.startMs === null ? 0 : (this.clock.totalMs() - this.startMs) / 1000;
  }

  began() {
    if (this.startMs === null) {
      this.startMs = this.clock.totalMs();
      this.clientId = crypto.randomUUID();
    }
  }

  snapshot() {
    const s = this.state;
    return { ...s, points: s.points.slice(), labels: s.labels.slice(), strokes: s.strokes.slice() };
  }

  record() {
    this.history.push(this.snapshot());
    this.future = [];
  }

  /** The body of a predict request for the current prompts (plus an extra point, for hover). */
  predictBody(extra) {
    const s = this.state;
    const points = extra ? [...s.points, extra] : s.points;
    const labels = extra ? [...s.labels, 1] : s.labels;
    const chosen = s.candidates[s.chosen];
    const base = chosen ? null : s.base;
    // One answer when a mask is the prompt: the model refines it, there is nothing to choose.
    const body = { points, labels, multimask: points.length === 1 && !s.box && !base };
    if (s.box) body.box = s.box;
    if (chosen && chosen.logits_id) body.mask_input_id = chosen.logits_id;
    else if (base && base.logitsId) body.mask_input_id = base.logitsId;
    else if (base && base.maskId) body.refine_mask = base.maskId;
    return body;
  }

  addPoint(x, y, label, clickedAt, answer) {
    this.began();
    this.record();
    this.state.points.push([x, y]);
    this.state.labels.push(label);
    this.onChange();
    if (answer) this.applyAnswer(answer, clickedAt);
    else this.predict(clickedAt);
  }

  setBox(box, clickedAt) {
    this.began();
    this.record();
    this.state.box = box;
    this.onChange();
    this.predict(clickedAt);
  }

  /** Loads a saved mask (re-edit; ``logitsId`` when this page still has its logits) or an
   *  Everything proposal as the current object. */
  load(rle, { editing = null, prompt = null, candidate = null, logitsId = null } = {}) {
    this.reset();
    this.began();
    this.editing = editing;
    if (candidate) {
      this.state.candidates = [candidate];
    } else {
      this.state.base = { rle, maskId: editing ? editing.id : null, logitsId };
    }
    if (prompt) {
      this.state.points = (prompt.points || []).map((p) => p.slice());
      this.state.labels = (prompt.labels || []).slice();
      this.state.box = prompt.box || null;
    }
    this.rebuild();
  }

  choose(index) {
    const n = this.state.candidates.length;
    if (n < 2) return;
    this.state.chosen = ((index % n) + n) % n;
    this.rebuild();
  }

  /** Chooses the candidate at ``rank`` in size order (0: the whole object). */
  chooseRank(rank) {
    const order = sizeOrder(this.state.candidates);
    if (rank >= 0 && rank < order.length) this.choose(order[rank]);
  }

  cycle() {
    const order = sizeOrder(this.state.candidates);
    this.chooseRank((order.indexOf(this.state.chosen) + 1) % Math.max(order.length, 1));
  }

  async predict(clickedAt) {
    if (this.busy) {
      this.again = clickedAt;
      return;
    }
    if (!this.hasPrompts()) {
      this.state.candidates = [];
      this.rebuild();
      return;
    }
    this.busy = true;
    const body = this.predictBody();
    const asked = JSON.stringify([this.state.points, this.state.labels, this.state.box]);
    try {
      let answer;
      try {
        answer = await this.api("POST", `/api/images/${this.imageId}/predict/`, body);
      } catch (error) {
        // Logits expire after an hour (or the model changed): ask again without them, with the
        // stored mask as the prompt when that is what they stood for. A stored mask deleted
        // meanwhile (404): ask with the clicks alone.
        const base = this.state.candidates.length ? null : this.state.base;
        const expired = error.status === 400 && body.mask_input_id && /mask_input_id/.test(error.message);
        if (expired || (error.status === 404 && body.refine_mask)) {
          delete body.mask_input_id;
          delete body.refine_mask;
          if (expired && base && base.maskId) body.refine_mask = base.maskId;
          answer = await this.api("POST", `/api/images/${this.imageId}/predict/`, body);
        } else {
          throw error;
        }
      }
      const now = JSON.stringify([this.state.points, this.state.labels, this.state.box]);
      // Prompts changed meanwhile (a click queued its own request; an undo shows its state).
      if (now === asked) this.applyAnswer(answer, clickedAt);
    } catch (error) {
      this.onError(error);
    } finally {
      this.busy = false;
      this.onChange();
    }
    if (this.again !== null) {
      const next = this.again;
      this.again = null;
      this.predict(next);
    }
  }

  applyAnswer(answer, clickedAt) {
    this.state.candidates = answer.masks;
    this.state.chosen = bestIndex(answer.masks);
    this.state.base = null;
    this.rebuild();
    this.onPredicted(answer, clickedAt);
  }

  /** Recomputes the shown mask: the chosen candidate (or base), then every stroke. */
  rebuild() {
    const s = this.state;
    const source = s.candidates[s.chosen] || s.base;
    if (source) this.layer.setRle(source.rle);
    else this.layer.clear();
    for (const stroke of s.strokes) this.paintStroke(stroke);
    this.onChange();
  }

  paintStroke(stroke) {
    const pts = stroke.pts;
    if (pts.length === 1) {
      const box = this.layer.stamp(pts[0][0], pts[0][1], stroke.r, stroke.value);
      if (box) this.layer.render(...box);
    }
    for (let i = 1; i < pts.length; i++) this.layer.line(pts[i - 1], pts[i], stroke.r, stroke.value);
  }

  beginStroke(x, y, radius, value) {
    this.began();
    this.record();
    this.stroke = { pts: [[x, y]], r: radius, value };
    this.state.strokes = [...this.state.strokes, this.stroke];
    this.paintStroke(this.stroke);
    this.onChange();
  }

  extendStroke(x, y) {
    if (!this.stroke) return;
    const pts = this.stroke.pts;
    const last = pts[pts.length - 1];
    if (Math.hypot(x - last[0], y - last[1]) < 0.5) return;
    pts.push([x, y]);
    this.layer.line(last, [x, y], this.stroke.r, this.stroke.value);
    this.onChange();
  }

  endStroke() {
    this.stroke = null;
  }

  canUndo() {
    return this.history.length > 0;
  }

  canRedo() {
    return this.future.length > 0;
  }

  undo() {
    if (!this.history.length) return;
    this.future.push(this.snapshot());
    this.state = this.history.pop();
    this.rebuild();
  }

  redo() {
    if (!this.future.length) return;
    this.history.push(this.snapshot());
    this.state = this.future.pop();
    this.rebuild();
  }

  reset() {
    this.state = EMPTY();
    this.history = [];
    this.future = [];
    this.editing = null;
    this.clientId = null;
    this.startMs = null;
    this.again = null;
    this.stroke = null;
    this.layer.clear();
  }

  /**
   * What Enter saves, or null when the mask is empty; the editor is then cleared at once (a
   * second Enter has nothing left to save). The RLE is the model's own when nothing was
   * painted, else the painted mask encoded here.
   */
  take() {
    if (this.layer.isEmpty()) return null;
    const s = this.state;
    const candidate = s.candidates[s.chosen];
    const painted = s.strokes.length > 0;
    let rle;
    if (!painted && candidate) rle = candidate.rle;
    else if (!painted && s.base) rle = s.base.rle;
    else rle = encode(this.layer.bits, this.layer.h, this.layer.w);
    const result = {
      clientId: this.clientId,
      rle,
      seconds: Math.round(this.secondsSoFar() * 1000) / 1000,
      editing: this.editing,
      prompt: null,
      fromModel: Boolean(candidate),
      predictedIou: candidate && !painted ? candidate.predicted_iou : null,
      stability: candidate && !painted ? candidate.stability_score ?? null : null,
      pointCoords: candidate && candidate.point_coords ? candidate.point_coords : null,
      // The logits of what is saved, so a later Edit of it in this page refines them.
      logitsId: painted ? null : candidate ? candidate.logits_id || null : s.base ? s.base.logitsId : null,
    };
    if (this.hasPrompts()) {
      result.prompt = { points: s.points, labels: s.labels, box: s.box };
      if (candidate && s.candidates.length > 1) result.prompt.chosen_index = s.chosen;
      else if (candidate) result.prompt.chosen_index = 0;
    }
    this.reset();
    this.onChange();
    return result;
  }
}
