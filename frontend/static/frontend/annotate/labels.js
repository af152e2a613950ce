// The dataset's label set on the annotation page: the picker of the current mask's label (a list
// with colour swatches; Shift+1…9 pick by position, Shift+0 removes it), the label remembered
// for the next mask (localStorage, per dataset, so it survives the next image and a reload),
// and the mask list's filter by label. A dataset without labels shows none of this: its masks
// stay class-agnostic, as in SA-1B.
//
// The label of a saved mask being re-edited is shown while it is edited (``override``); what is
// chosen then also becomes the remembered label.

const $ = (id) => document.getElementById(id);
const NO_FILTER = "";
const UNLABELLED = "none";

/** "#rrggbb" → [r, g, b]. */
export function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function swatch(colour) {
  const span = document.createElement("span");
  span.className = "label-swatch";
  if (colour) span.style.background = colour;
  return span;
}

/** A label's chip: its swatch and name (or "no label"). */
export function labelChip(label) {
  const chip = document.createElement("span");
  chip.className = label ? "mask-label" : "mask-label none";
  chip.dataset.labelId = label ? label.id : "";
  const name = document.createElement("span");
  name.textContent = label ? label.name : "no label";
  chip.append(swatch(label ? label.color : null), name);
  return chip;
}

export class LabelSet {
  constructor({ api, datasetId, onChange }) {
    this.api = api;
    this.datasetId = datasetId;
    this.onChange = onChange;
    this.labels = []; // the server's order: position, then id (the digit keys follow it)
    this.byId = new Map();
    this.storageKey = `sade-last-label-${datasetId}`;
    this.remembered = this.readRemembered();
    this.override = undefined; // the label of the saved mask being re-edited
    this.filter = NO_FILTER; // "", "none" or a label id (as a string, the select's value)
  }

  readRemembered() {
    const raw = localStorage.getItem(this.storageKey);
    return raw && /^\d+$/.test(raw) ? Number(raw) : null;
  }

  async load() {
    this.labels = await this.api("GET", `/api/datasets/${this.datasetId}/labels/`);
    this.byId = new Map(this.labels.map((label) => [label.id, label]));
    // A remembered label deleted since is forgotten; so is a filter on it.
    if (this.remembered !== null && !this.byId.has(this.remembered)) this.remember(null);
    if (this.filter !== NO_FILTER && this.filter !== UNLABELLED && !this.byId.has(Number(this.filter))) {
      this.filter = NO_FILTER;
    }
    this.render();
    this.onChange("colours");
  }

  get any() {
    return this.labels.length > 0;
  }

  /** The label id the current mask gets when it is accepted (null: no label). */
  get current() {
    return this.override !== undefined ? this.override : this.remembered;
  }

  get(id) {
    return id === null || id === undefined ? null : this.byId.get(id) || null;
  }

  /** The label to show for ``id``: a label made since the page loaded its list is named by id
   *  (the next reload names it). */
  describe(id) {
    if (id === null || id === undefined) return null;
    return this.get(id) || { id, name: `label #${id}`, color: null };
  }

  /** The label at 1-based ``position`` of the list (Shift+digit), undefined past its end. */
  atPosition(position) {
    return this.labels[position - 1];
  }

  remember(id) {
    this.remembered = id;
    if (id === null) localStorage.removeItem(this.storageKey);
    else localStorage.setItem(this.storageKey, String(id));
  }

  /** The annotator picked ``id`` (null: no label) for the current mask, and for the next. */
  choose(id) {
    if (this.override !== undefined) this.override = id;
    this.remember(id);
    this.render();
  }

  startEditing(labelId) {
    this.override = labelId;
    this.render();
  }

  stopEditing() {
    if (this.override === undefined) return;
    this.override = undefined;
    this.render();
  }

  colour(id) {
    const label = this.get(id);
    return label ? hexToRgb(label.color) : null;
  }

  /** Whether the mask list's filter shows ``mask``. */
  shows(mask) {
    if (this.filter === NO_FILTER) return true;
    if (this.filter === UNLABELLED) return mask.label === null;
    return mask.label === Number(this.filter);
  }

  setFilter(value) {
    this.filter = value;
    this.onChange("filter");
  }

  /** Options of a label <select>: ``first`` ([value, text] pairs), then every label. */
  options(first) {
    const rows = [...first, ...this.labels.map((l) => [String(l.id), l.name])];
    return rows.map(([value, text]) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      return option;
    });
  }

  render() {
    $("label-picker").hidden = !this.any;
    const filter = $("label-filter");
    filter.hidden = !this.any;
    if (!this.any) return;
    const current = this.current;
    const buttons = [null, ...this.labels].map((label, i) => {
      const button = document.createElement("button");
      button.type = "button";
      const id = label ? label.id : null;
      button.className = `label-choice${id === current ? " active" : ""}`;
      button.dataset.labelId = label ? String(label.id) : "";
      button.setAttribute("aria-pressed", String(id === current));
      const key = document.createElement("kbd");
      // Shift+1…9 reach the first nine labels; the rest are picked with the mouse.
      key.textContent = i === 0 ? "⇧0" : i <= 9 ? `⇧${i}` : "";
      const name = document.createElement("span");
      name.textContent = label ? label.name : "no label";
      button.append(key, swatch(label ? label.color : null), name);
      button.title = label ? `label the mask "${label.name}"` : "no label (class-agnostic)";
      return button;
    });
    $("label-choices").replaceChildren(...buttons);
    $("current-label").replaceChildren(labelChip(this.get(current)));
    const value = this.filter;
    filter.replaceChildren(...this.options([[NO_FILTER, "all labels"], [UNLABELLED, "no label"]]));
    filter.value = value;
  }
}
