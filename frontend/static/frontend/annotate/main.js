// The annotation page: wires the image, the editor, the saved masks, saving, timing and the
// panels together, and talks to the REST API. `window.sade` exposes the app to the browser
// tests and the click benchmark (positions, state, timings).

import { labelActions, savedMaskActions, wholeImageActions } from "./actions.js";
import { api } from "./api.js";
import { CanvasController } from "./canvas.js";
import { ObjectEditor } from "./editor.js";
import { Proposals } from "./everything.js";
import { HoverPreview } from "./hover.js";
import { LabelSet } from "./labels.js";
import { MaskLayer, STYLES } from "./layers.js";
import { MaskStore } from "./masks.js";
import { renderCandidates, renderCurrent, renderPanels, renderPending, renderSummary } from "./panels.js";
import { SaveQueue } from "./save.js";
import { fillHelp, installShortcuts } from "./shortcuts.js";
import { ActivityClock, SessionTimer } from "./timing.js";
import { Lifecycle, wireControls } from "./lifecycle.js";
import { Viewport } from "./viewport.js";

const $ = (id) => document.getElementById(id);
const HINT_AFTER_SECONDS = 30;
const MASK_REFRESH_MS = 10_000;

/** Grids above what the server allows this user (SADE_EVERYTHING_MAX_GRID) are not offered. */
function limitEverythingGrid(maxGrid) {
  if (!maxGrid) return;
  for (const option of $("everything-grid").options) {
    option.disabled = Number(option.value) > maxGrid;
    if (option.disabled) option.title = `at most ${maxGrid}×${maxGrid} for annotators`;
  }
}

class App {
  constructor(config) {
    this.config = config;
    this.imageId = config.imageId;
    this.canvas = $("canvas");
    limitEverythingGrid(config.everythingMaxGrid);
    this.tool = "prompt";
    this.image = null;
    this.imageInfo = null;
    this.model = null;
    this.metrics = { clickToMask: [], ignoredClicks: 0 };
    this.hintShown = false;
    this.acceptWhenShown = false; // Enter pressed while the first answer was on its way
    this.deletions = []; // deleted masks in their undo window: [{id, timer}]
    // Logits of masks saved from this page: {id: {version, logitsId}} (an Edit refines them),
    // and those of saves under way, by client_id or "edit-<id>".
    this.maskLogits = new Map();
    this.savingLogits = new Map();
    this.clock = new ActivityClock();
    this.view = new Viewport(this.canvas, config.width, config.height);
    const update = () => this.update();
    this.editor = new ObjectEditor({
      api,
      imageId: this.imageId,
      layer: new MaskLayer(config.width, config.height, STYLES.working),
      clock: this.clock,
      onChange: update,
      onPredicted: (answer, clickedAt) => this.predicted(answer, clickedAt),
      onError: (error) => {
        this.acceptWhenShown = false;
        this.status(`The model could not answer: ${error.message}`, "error");
      },
    });
    this.hover = new HoverPreview({
      api,
      imageId: this.imageId,
      editor: this.editor,
      layer: new MaskLayer(config.width, config.height, STYLES.hover),
      onChange: () => this.canvasView.render(),
    });
    // New or changed labels recolour the masks; a filter change only lists and draws fewer.
    this.labels = new LabelSet({
      api,
      datasetId: config.datasetId,
      onChange: (what) => (what === "colours" ? this.masks.restyle() : this.masks.changed()),
    });
    this.masks = new MaskStore({
      api,
      imageId: this.imageId,
      me: config.user,
      labels: this.labels,
      listElement: $("mask-list"),
      onChange: update,
    });
    this.saves = new SaveQueue({
      api,
      imageId: this.imageId,
      onSaved: (mask, item) => this.saved(mask, item),
      onConflict: (item, error) => this.conflict(item, error),
      onChange: () => renderPending(this),
    });
    this.proposals = new Proposals({ api, imageId: this.imageId, onChange: update });
    this.session = new SessionTimer(api, this.clock, this.imageId);
    this.lifecycle = new Lifecycle(this);
    this.canvasView = new CanvasController(this);
  }

  async start() {
    for (const type of ["pointermove", "pointerdown", "keydown", "wheel"]) {
      window.addEventListener(type, () => this.clock.touch(), { capture: true, passive: true });
    }
    installShortcuts(this);
    fillHelp($("help-table"));
    wireControls(this);
    const image = new Image();
    image.src = `/api/images/${this.imageId}/file/`;
    const loaded = image.decode().then(() => {
      this.image = image;
      this.view.resize();
      this.view.fit();
      this.canvasView.renderNow();
    });
    await Promise.all([
      loaded,
      this.masks.load(),
      this.labels.load().catch((e) => this.status(`The labels could not be loaded: ${e.message}`, "error")),
      this.session.start().catch((e) => this.status(`Session not started: ${e.message}`, "error")),
      this.lifecycle.loadModel(),
      this.refreshToday(),
    ]);
    this.saves.flush();
    this.lifecycle.prepare();
    this.lifecycle.prefetchNext();
    this.lifecycle.watch();
    setInterval(() => this.tick(), 250);
    setInterval(() => this.masks.load().catch(() => {}), MASK_REFRESH_MS);
    window.addEventListener("focus", () => {
      this.masks.load().catch(() => {});
      this.labels.load().catch(() => {});
    });
    document.body.dataset.ready = "1";
    this.update();
  }

  // --- state shown ------------------------------------------------------------------------------

  update() {
    if (this.masks.editingId === null) this.labels.stopEditing();
    renderCandidates(this);
    renderCurrent(this);
    renderPanels(this);
    renderPending(this);
    renderSummary(this);
    this.canvasView.render();
  }

  tick() {
    renderSummary(this);
    const seconds = this.editor.secondsSoFar();
    if (!this.editor.isEmpty() && seconds > HINT_AFTER_SECONDS && !this.hintShown) {
      this.hintShown = true;
      this.showHint(
        `${Math.round(seconds)} s on this mask. The guideline is to move on: accept what you have ` +
          "(Enter) or clear it (Esc); a good-enough mask now beats a perfect one later.",
      );
    }
  }

  status(text, kind = "info") {
    const line = $("status");
    line.textContent = text;
    line.className = `status ${kind}`;
  }

  showHint(text) {
    const hint = $("hint");
    hint.textContent = text;
    hint.hidden = false;
    clearTimeout(this.hintTimer);
    this.hintTimer = setTimeout(() => (hint.hidden = true), 12_000);
  }

  /** The annotator's work today as the server counts it (every tab and browser), kept in
   * ``this.today`` for the summary panel; refreshed at start, after each save and delete, and
   * when an image is finished. */
  async refreshToday() {
    try {
      this.today = await api("GET", "/api/me/today/");
    } catch {
      return this.today;  // keep the last figures; the next refresh tries again
    }
    renderSummary(this);
    return this.today;
  }

  dialogOpen() {
    return [...document.querySelectorAll("dialog")].some((d) => d.open);
  }

  // --- prompts ----------------------------------------------------------------------------------

  clicked(x, y, label, clickedAt) {
    if (this.proposals.items.length && this.editor.isEmpty() && label === 1) {
      const index = this.proposals.at(x, y);
      if (index >= 0) {
        this.hover.hide();
        this.takeProposal(index);
        return;
      }
    }
    const answer = label === 1 ? this.hover.answerFor(x, y) : null;
    this.hover.hide();
    this.editor.addPoint(x, y, label, clickedAt, answer);
  }

  boxDrawn(box, clickedAt) {
    if (box[2] - box[0] < 2 || box[3] - box[1] < 2) return;
    this.hover.hide();
    this.editor.setBox(box, clickedAt);
  }

  ignoredOutside() {
    this.metrics.ignoredClicks += 1;
    this.status("That click was outside the image: ignored.");
  }

  predicted(answer, clickedAt) {
    this.canvasView.renderNow();
    this.metrics.clickToMask.push(performance.now() - clickedAt);
    if (answer.embedding_computed) this.status("The model had to compute this image's embedding first.");
    if (this.acceptWhenShown) {
      // Enter was pressed before the first answer: save it now that it is shown (after the
      // editor has finished taking the answer in).
      this.acceptWhenShown = false;
      setTimeout(() => this.accept(), 0);
    }
  }

  setTool(tool) {
    this.tool = tool;
    this.hover.hide();
    this.update();
  }

  brushRadius() {
    return Number($("brush-size").value) / 2;
  }

  resizeBrush(factor) {
    const input = $("brush-size");
    const next = Math.round(Math.min(200, Math.max(1, Number(input.value) * factor + (factor > 1 ? 1 : -1))));
    input.value = String(next);
    $("brush-size-value").textContent = String(next);
    this.canvasView.render();
  }

  /** Undoes the editor's last step; with nothing to undo there, brings back the mask deleted
   *  last (while its undo window is open). */
  undo() {
    if (this.editor.canUndo()) this.editor.undo();
    else this.undoDelete();
  }

  redo() {
    this.editor.redo();
  }

  toggleHover() {
    const on = this.hover.toggle();
    $("hover-toggle").textContent = `Hover preview: ${on ? "on" : "off"}`;
    $("hover-toggle").setAttribute("aria-pressed", String(on));
  }

  zoomKey(key) {
    if (key === "0") this.view.fit();
    else this.view.zoomCentre(key === "-" ? 1 / 1.25 : 1.25);
    this.canvasView.render();
  }

  escape() {
    const open = [...document.querySelectorAll("dialog")].find((d) => d.open);
    if (open) return open.close();
    this.acceptWhenShown = false;
    if (!this.editor.isEmpty()) {
      this.masks.editingId = null;
      this.editor.reset();
      this.hintShown = false;
      this.update();
      return;
    }
    if (this.proposals.answer) this.proposals.clear();
    else this.masks.selectNone();
  }

  toggleHelp() {
    const help = $("help");
    if (help.open) help.close();
    else help.showModal();
  }

  toggleAllMasks() {
    this.masks.allHidden = !this.masks.allHidden;
    this.update();
  }

  // --- saving -----------------------------------------------------------------------------------

  accept() {
    const taken = this.editor.take();
    if (!taken) {
      if (this.editor.busy && this.editor.hasPrompts()) {
        this.acceptWhenShown = true;
        this.status("The model is still answering your click: the mask is saved as soon as it is shown.");
      } else {
        this.status("Nothing to save: click the object, drag a box or paint first.");
      }
      return;
    }
    this.hintShown = false;
    const logitsKey = taken.editing ? `edit-${taken.editing.id}` : taken.clientId;
    if (taken.logitsId) this.savingLogits.set(logitsKey, taken.logitsId);
    else this.savingLogits.delete(logitsKey);
    if (taken.editing) {
      const body = { version: taken.editing.version, rle: taken.rle, seconds_spent: taken.editing.seconds + taken.seconds };
      if (taken.prompt) body.prompt = taken.prompt;
      if (this.labels.current !== taken.editing.label) body.label = this.labels.current;
      this.masks.editingId = null;
      this.saves.update(taken.editing.id, body);
    } else {
      const body = {
        image: this.imageId,
        rle: taken.rle,
        source: taken.fromModel ? "model_assisted" : "manual",
        client_id: taken.clientId,
        seconds_spent: taken.seconds,
      };
      if (this.session.session) body.session = this.session.session.id;
      if (taken.prompt) body.prompt = taken.prompt;
      if (this.labels.current !== null) body.label = this.labels.current;
      if (taken.predictedIou !== null) body.predicted_iou = taken.predictedIou;
      if (taken.stability !== null) body.stability_score = taken.stability;
      if (taken.pointCoords) body.point_coords = taken.pointCoords;
      this.saves.create(body);
    }
    this.status(`Saving the mask (${taken.seconds.toFixed(1)} s)…`);
    this.update();
  }

  saved(mask, item) {
    this.masks.upsert(mask);
    if (item.kind === "update" && !item.body.rle) {
      // A new label only: the pixels, and so the model's logits of them, are unchanged.
      const cached = this.maskLogits.get(mask.id);
      if (cached) cached.version = mask.version;
      const label = this.labels.get(mask.label);
      this.status(`Mask #${mask.id}: ${label ? `label ${label.name}` : "no label"}.`, "ok");
      this.lifecycle.broadcast("changed");
      return;
    }
    const logitsKey = item.kind === "create" ? item.body.client_id : `edit-${mask.id}`;
    const logitsId = this.savingLogits.get(logitsKey);
    this.savingLogits.delete(logitsKey);
    if (logitsId) this.maskLogits.set(mask.id, { version: mask.version, logitsId });
    else this.maskLogits.delete(mask.id);
    if (item.kind === "create") this.refreshToday();
    this.status(item.kind === "create" ? `Saved mask #${mask.id}.` : `Saved your edit of mask #${mask.id}.`, "ok");
    this.lifecycle.broadcast("changed");
  }

  conflict(item, error) {
    const id = item.maskId;
    const text = error.status === 404
      ? `Mask #${id} was deleted by someone else while you edited it; your change was not saved.`
      : `Someone else changed mask #${id} while you were editing it, so your change was not saved ` +
        "(it would have overwritten theirs). The mask now shows their version: redo your change if it is still needed.";
    this.status(text, "error");
    if (this.masks.editingId === id) this.masks.editingId = null;
    this.masks.load().catch(() => {});
  }

  done() {
    this.lifecycle.finish(false);
  }
}

Object.assign(App.prototype, savedMaskActions, wholeImageActions, labelActions);

const config = JSON.parse(document.getElementById("annotate-config").textContent);
const app = new App(config);
window.sade = app;
app.start().catch((error) => app.status(`The page could not start: ${error.message}`, "error"));
