// The image's saved masks: kept in sync with the server (another tab or another annotator may
// add, change or delete them), drawn as cropped layers, listed in the sidebar where each can be
// selected, hidden, re-edited, relabelled, deleted and, when the model pre-filled it, kept; with
// a label filter, only the masks with that label are listed and drawn. The page's
// figures (masks on this image, yours, seconds per mask) are counted from this list, the
// server's, so they always agree with it.
//
// A refresh never undoes what this page did while it was under way: every local change (a save,
// a delete) is stamped, and a refresh's answer neither removes nor overwrites an entry changed
// after the refresh was asked, nor brings back a mask deleted since. A deleted mask is first set
// aside (hidden, not counted) for the undo window before the server is told.

import { listAll } from "./api.js";
import { cropLayer, paletteColour, STYLES } from "./layers.js";
import { labelChip } from "./labels.js";
import { decodeCrop } from "./rle.js";

export function isUnreviewedPrefill(mask) {
  return mask.source === "prefilled" && !mask.review;
}

/** A mask's colour: its label's, else one of the palette by id. */
function colourOf(mask, labels) {
  return labels.colour(mask.label) || paletteColour(mask.id);
}

function styleFor(mask, selected, labels) {
  if (isUnreviewedPrefill(mask)) {
    return selected ? { ...STYLES.prefilled, fill: 150 } : STYLES.prefilled;
  }
  return { ...(selected ? STYLES.selected : STYLES.saved), rgb: colourOf(mask, labels) };
}

export class MaskStore {
  constructor({ api, imageId, me, labels, listElement, onChange }) {
    this.api = api;
    this.labels = labels;
    this.imageId = imageId;
    this.me = me;
    this.list = listElement;
    this.onChange = onChange;
    this.entries = new Map();
    this.allHidden = false;
    this.editingId = null;
    this.removedPrefills = 0;
    this.stamp = 0; // bumped by every local change
    this.removedAt = new Map(); // id -> stamp of its local deletion
    this.aside = new Map(); // id -> entry: deleted here, the server not told yet (undo window)
    this.loadsAsked = 0;
    this.loadsApplied = 0;
  }

  async load() {
    const since = this.stamp;
    const seq = ++this.loadsAsked;
    const rows = await listAll(`/api/masks/?image=${this.imageId}`);
    if (seq < this.loadsApplied) return false; // a refresh asked later has answered already
    this.loadsApplied = seq;
    const seen = new Set();
    let changed = false;
    for (const mask of rows) {
      seen.add(mask.id);
      if (this.aside.has(mask.id) || (this.removedAt.get(mask.id) ?? -1) > since) continue;
      const entry = this.entries.get(mask.id);
      if (entry && entry.stamp > since) continue; // saved here after this refresh was asked
      if (!entry || entry.mask.version !== mask.version) {
        this.upsert(mask, false, since);
        changed = true;
      }
    }
    for (const [id, entry] of [...this.entries]) {
      if (!seen.has(id) && id !== this.editingId && entry.stamp <= since) {
        this.entries.delete(id);
        changed = true;
      }
    }
    if (changed) this.changed();
    return changed;
  }

  /** Stores a mask's new state; ``stamp`` is the refresh's for rows a refresh brought, else a
   *  new one (a change made here). */
  upsert(mask, notify = true, stamp = ++this.stamp) {
    const previous = this.entries.get(mask.id);
    const selected = previous ? previous.selected : false;
    const entry = { mask, stamp, selected, hidden: previous ? previous.hidden : false, crop: decodeCrop(mask.rle) };
    entry.layer = cropLayer(entry.crop, styleFor(mask, selected, this.labels));
    this.entries.set(mask.id, entry);
    if (notify) this.changed();
    return entry;
  }

  /** Draws every mask again (the labels' colours changed). */
  restyle() {
    for (const entry of this.entries.values()) {
      entry.layer = cropLayer(entry.crop, styleFor(entry.mask, entry.selected, this.labels));
    }
    this.changed();
  }

  /** The mask is gone from the server: forget it. */
  remove(id) {
    const entry = this.entries.get(id) || this.aside.get(id);
    if (entry && isUnreviewedPrefill(entry.mask) && !this.aside.has(id)) this.removedPrefills += 1;
    this.entries.delete(id);
    this.aside.delete(id);
    this.removedAt.set(id, ++this.stamp);
    this.changed();
  }

  /** Deleted here, the server not told yet: hidden and not counted, can come back. */
  setAside(id) {
    const entry = this.entries.get(id);
    if (!entry) return null;
    if (isUnreviewedPrefill(entry.mask)) this.removedPrefills += 1;
    this.entries.delete(id);
    this.aside.set(id, entry);
    this.stamp += 1;
    this.changed();
    return entry;
  }

  /** Undoes setAside. */
  restore(id) {
    const entry = this.aside.get(id);
    if (!entry) return null;
    if (isUnreviewedPrefill(entry.mask)) this.removedPrefills -= 1;
    this.aside.delete(id);
    entry.stamp = ++this.stamp;
    this.entries.set(id, entry);
    this.changed();
    return entry;
  }

  /** The page's figures, from the masks listed: all of them, the viewer's, and the viewer's
   *  mean seconds per mask (over those with a recorded time). */
  counts() {
    let mine = 0;
    let timed = 0;
    let seconds = 0;
    for (const { mask } of this.entries.values()) {
      if (mask.author !== this.me.id) continue;
      mine += 1;
      if (mask.seconds_spent > 0) {
        timed += 1;
        seconds += mask.seconds_spent;
      }
    }
    return { total: this.entries.size, mine, secondsPerMask: timed ? seconds / timed : null };
  }

  get(id) {
    return this.entries.get(id);
  }

  /** How many masks the label filter lets through. */
  shownCount() {
    return [...this.entries.values()].filter((entry) => this.labels.shows(entry.mask)).length;
  }

  select(id, additive) {
    for (const [key, entry] of this.entries) {
      const wanted = key === id ? !(additive && entry.selected) : additive ? entry.selected : false;
      if (wanted !== entry.selected) {
        entry.selected = wanted;
        entry.layer = cropLayer(entry.crop, styleFor(entry.mask, wanted, this.labels));
      }
    }
    this.changed();
  }

  selectNone() {
    for (const entry of this.entries.values()) {
      if (entry.selected) {
        entry.selected = false;
        entry.layer = cropLayer(entry.crop, styleFor(entry.mask, false, this.labels));
      }
    }
    this.changed();
  }

  selected() {
    return [...this.entries.values()].filter((entry) => entry.selected);
  }

  /** The saved mask under image pixel (x, y), the smallest one when several overlap. */
  at(x, y) {
    let best = null;
    for (const entry of this.visible()) {
      const c = entry.crop;
      if (!c || x < c.x0 || y < c.y0 || x >= c.x1 || y >= c.y1) continue;
      if (!c.data[(y - c.y0) * (c.x1 - c.x0) + (x - c.x0)]) continue;
      if (!best || entry.mask.area < best.mask.area) best = entry;
    }
    return best;
  }

  visible() {
    if (this.allHidden) return [];
    return [...this.entries.values()].filter(
      (e) => !e.hidden && e.layer && e.mask.id !== this.editingId && this.labels.shows(e.mask),
    );
  }

  prefillCounts() {
    const counts = { total: 0, unreviewed: 0, kept: 0, edited: 0, deleted: this.removedPrefills };
    for (const { mask } of this.entries.values()) {
      if (mask.source !== "prefilled") continue;
      counts.total += 1;
      if (!mask.review) counts.unreviewed += 1;
      else counts[mask.review] += 1;
    }
    return counts;
  }

  changed() {
    this.renderList();
    this.onChange();
  }

  describeAuthor(mask) {
    if (mask.author === null) return "the model";
    return mask.author === this.me.id ? "you" : `annotator #${mask.author}`;
  }

  renderList() {
    const items = [];
    for (const entry of [...this.entries.values()].sort((a, b) => a.mask.id - b.mask.id)) {
      const { mask } = entry;
      if (!this.labels.shows(mask)) continue;
      const li = document.createElement("li");
      li.dataset.id = mask.id;
      li.className = [
        "mask-item",
        entry.selected ? "selected" : "",
        entry.hidden ? "is-hidden" : "",
        isUnreviewedPrefill(mask) ? "prefilled" : "",
        mask.id === this.editingId ? "editing" : "",
      ].join(" ");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      const rgb = isUnreviewedPrefill(mask) ? STYLES.prefilled.rgb : colourOf(mask, this.labels);
      swatch.style.background = `rgb(${rgb.join(",")})`;
      const label = document.createElement("span");
      label.className = "label";
      const seconds = mask.seconds_spent ? ` · ${mask.seconds_spent.toFixed(1)} s` : "";
      const review = mask.source === "prefilled" ? ` · ${mask.review || "to review"}` : "";
      label.textContent = `#${mask.id} ${mask.source.replace("_", "-")}${review} · ${this.describeAuthor(mask)} · ${mask.area} px${seconds}`;
      if (this.labels.any) label.prepend(labelChip(this.labels.describe(mask.label)), " ");
      const actions = document.createElement("span");
      actions.className = "actions";
      li.append(swatch, label, actions);
      if (this.labels.any) actions.append(this.labelSelect(mask));
      const buttons = [["hide", entry.hidden ? "Show" : "Hide"]];
      if (isUnreviewedPrefill(mask)) buttons.push(["keep", "Keep"], ["edit", "Fix"]);
      else buttons.push(["edit", "Edit"]);
      buttons.push(["delete", "Delete"]);
      for (const [act, text] of buttons) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.act = act;
        button.textContent = text;
        actions.append(button);
      }
      items.push(li);
    }
    this.list.replaceChildren(...items);
  }

  /** The row's control changing the mask's label (mask-list "change" events, lifecycle.js). */
  labelSelect(mask) {
    const select = document.createElement("select");
    select.className = "label-select";
    select.dataset.act = "label";
    select.title = `label of mask #${mask.id}`;
    select.setAttribute("aria-label", select.title);
    select.append(...this.labels.options([["", "no label"]]));
    select.value = mask.label === null ? "" : String(mask.label);
    return select;
  }
}
