// What the annotator does to saved masks, to the whole image and with labels, as methods mixed
// into the annotation page's App (main.js): `this` is the app.

import { api } from "./api.js";
import { cropOf, downloadCutout, unionCrop } from "./cutout.js";
import { isUnreviewedPrefill } from "./masks.js";

const $ = (id) => document.getElementById(id);
const UNDO_DELETE_MS = 10_000;

/** Selecting, re-editing, keeping and deleting the saved masks (methods of the App). */
export const savedMaskActions = {
  editMask(id) {
    const entry = this.masks.get(id);
    if (!entry) return;
    if (!this.editor.isEmpty()) {
      this.status("Accept (Enter) or clear (Esc) the current mask first.");
      return;
    }
    const { mask } = entry;
    const cached = this.maskLogits.get(id);
    this.masks.editingId = id;
    this.editor.load(mask.rle, {
      editing: { id, version: mask.version, seconds: mask.seconds_spent, source: mask.source, label: mask.label },
      prompt: mask.source === "prefilled" ? null : mask.prompt,
      logitsId: cached && cached.version === mask.version ? cached.logitsId : null,
    });
    this.labels.startEditing(mask.label);
    this.masks.renderList();
    this.status(`Editing mask #${id}: click, box, brush or erase, then Enter saves it.`);
  },

  selectAt(x, y, additive) {
    const entry = this.masks.at(x, y);
    if (entry) this.masks.select(entry.mask.id, additive);
    else if (!additive) this.masks.selectNone();
  },

  editSelected() {
    const [first] = this.masks.selected();
    if (first) this.editMask(first.mask.id);
  },

  async keepMask(id) {
    const entry = this.masks.get(id);
    if (!entry || !isUnreviewedPrefill(entry.mask)) return;
    try {
      this.masks.upsert(await api("POST", `/api/masks/${id}/keep/`, { version: entry.mask.version }));
      this.status(`Kept mask #${id} as the model made it.`, "ok");
      this.lifecycle.broadcast("changed");
    } catch (error) {
      if (error.status === 409) this.conflict({ maskId: id }, error);
      else this.status(`Could not keep mask #${id}: ${error.message}`, "error");
    }
  },

  keepSelected() {
    for (const entry of this.masks.selected()) this.keepMask(entry.mask.id);
  },

  /** Deletes a saved mask, undoably: it disappears at once, the server is told when the undo
   *  window closes (or at Done, Skip or leaving the page); Ctrl+Z meanwhile brings it back. */
  deleteMask(id) {
    if (!this.masks.get(id)) return;
    if (this.masks.editingId === id) {
      this.masks.editingId = null;
      this.editor.reset();
    }
    this.masks.setAside(id);
    const timer = setTimeout(() => this.commitDelete(id), UNDO_DELETE_MS);
    this.deletions.push({ id, timer });
    this.status(`Deleted mask #${id}. Ctrl+Z brings it back.`);
  },

  undoDelete() {
    const last = this.deletions.pop();
    if (!last) return false;
    clearTimeout(last.timer);
    this.masks.restore(last.id);
    this.status(`Mask #${last.id} is back.`, "ok");
    return true;
  },

  /** Tells the server about one deletion whose undo window closed. */
  async commitDelete(id, { keepalive = false } = {}) {
    const index = this.deletions.findIndex((d) => d.id === id);
    if (index < 0) return;
    clearTimeout(this.deletions[index].timer);
    this.deletions.splice(index, 1);
    const entry = this.masks.aside.get(id);
    if (!entry) return;
    try {
      // The version this page last saw: a mask someone changed since is not deleted (409).
      await api("DELETE", `/api/masks/${id}/?version=${entry.mask.version}`, undefined, { keepalive });
    } catch (error) {
      if (error.status !== 404) {
        this.masks.restore(id);
        if (error.status === 409) this.conflict({ maskId: id }, error);
        else this.status(`Could not delete mask #${id}: ${error.message}`, "error");
        return;
      }
    }
    this.masks.remove(id);
    if (entry.mask.author === this.config.user.id) this.refreshToday();
    this.lifecycle.broadcast("changed");
  },

  /** Every deletion still in its undo window, now (Done, Skip, leaving the page). */
  flushDeletes(options) {
    return Promise.all(this.deletions.map((d) => d.id).map((id) => this.commitDelete(id, options)));
  },

  deleteSelected() {
    for (const entry of this.masks.selected()) this.deleteMask(entry.mask.id);
  },
};

/** What to say when Everything kept no mask, by the confidence chosen: the next setting to try,
 *  and for a model that is not Meta's checkpoint, that this is why. */
function nothingFound(confidence, untrained) {
  const why = untrained ? " The active model is not Meta's checkpoint (see Model): install it for real masks." : "";
  if (confidence === "paper") {
    return `the model found no mask it is confident about. Choose 'relaxed' or 'all' to see less confident ones.${why}`;
  }
  if (confidence === "relaxed") {
    return `the model found no mask even at 'relaxed'. Choose 'all' to see every mask it makes.${why}`;
  }
  return `the model made no mask at all here, at any confidence.${why}`;
}

/** Everything (proposals for the whole image) and Cut-out (methods of the App). */
export const wholeImageActions = {
  async everything() {
    if (this.proposals.running) return;
    const grid = Number($("everything-grid").value);
    const confidence = $("everything-confidence").value;
    this.status(`Everything: the model is segmenting the whole image (${grid}×${grid} points)…`);
    try {
      const answer = await this.proposals.run(grid, confidence);
      if (answer.masks.length) {
        this.status(`Everything: ${answer.masks.length} proposals in ${answer.seconds.toFixed(1)} s.`, "ok");
      } else {
        this.status(`Everything: ${nothingFound(confidence, this.model && !this.model.is_official)}`, "error");
      }
    } catch (error) {
      this.status(`Everything failed: ${error.message}`, "error");
    }
  },

  takeProposal(index) {
    const { mask } = this.proposals.take(index);
    this.editor.load(mask.rle, {
      candidate: { ...mask },
      prompt: { points: mask.point_coords, labels: mask.point_coords.map(() => 1), box: null },
    });
    this.status("Proposal taken: refine it or press Enter to accept.");
  },

  acceptAllProposals() {
    for (const { mask } of this.proposals.items) {
      const body = {
        image: this.imageId,
        rle: mask.rle,
        source: "model_assisted",
        client_id: crypto.randomUUID(),
        predicted_iou: mask.predicted_iou,
        stability_score: mask.stability_score,
        point_coords: mask.point_coords,
        prompt: { points: mask.point_coords, labels: mask.point_coords.map(() => 1) },
      };
      if (this.session.session) body.session = this.session.session.id;
      if (this.labels.current !== null) body.label = this.labels.current;
      this.saves.create(body);
    }
    this.proposals.clear();
  },

  cutout() {
    let crops = this.masks.selected().map((entry) => entry.crop);
    if (!crops.length && !this.editor.isEmpty()) {
      crops = [cropOf(this.editor.layer.bits, this.config.width, this.editor.layer.box)];
    }
    const crop = unionCrop(crops);
    if (!crop || !this.image) {
      this.status("Select masks in the list (or make one) to cut out.");
      return;
    }
    const base = this.config.imageName.replace(/\.[^.]+$/, "");
    downloadCutout(this.image, crop, `${base}-cutout.png`);
    this.status(`Cut-out of ${crops.length} mask(s) downloaded.`, "ok");
  },
};

/** Labels: the picker's choice and Shift+digit, and a saved mask's label (methods of the App). */
export const labelActions = {
  /** Shift+digit: label ``position`` of the list (0: no label) for the current mask and the next
   *  ones; with no mask in the making and saved masks selected, for those masks instead. */
  pickLabel(position) {
    if (!this.labels.any) {
      this.status("This dataset has no labels: its masks are class-agnostic.");
      return;
    }
    const label = position === 0 ? null : this.labels.atPosition(position);
    if (label === undefined) {
      this.status(`There is no label ${position}: the dataset has ${this.labels.labels.length}.`);
      return;
    }
    const id = label ? label.id : null;
    const selected = this.masks.selected();
    if (this.editor.isEmpty() && this.masks.editingId === null && selected.length) {
      for (const entry of selected) this.relabel(entry.mask.id, id);
      return;
    }
    this.chooseLabel(id);
  },

  /** The picker's choice: the current mask's label, remembered for the next masks. */
  chooseLabel(id) {
    this.labels.choose(id);
    const label = this.labels.get(id);
    this.status(label ? `Label: ${label.name} (for this mask and the next ones).` : "No label: the masks are class-agnostic.");
  },

  /** Changes a saved mask's label (PATCH with the version this page has, through the save
   *  queue: retried when offline, a 409 reported if someone changed the mask meanwhile). */
  relabel(id, labelId) {
    const entry = this.masks.get(id);
    if (!entry || entry.mask.label === labelId) return;
    if (this.saves.items.some((item) => item.maskId === id)) {
      this.status(`Mask #${id} is still being saved: change its label once it is.`);
      this.masks.renderList();
      return;
    }
    this.saves.update(id, { version: entry.mask.version, label: labelId });
  },
};
