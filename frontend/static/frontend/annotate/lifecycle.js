// Around the annotation itself: which model answers (said plainly), the image's embedding
// (prepared so the first click never waits for the encoder), the next image fetched ahead, who
// else holds or has open this image, and finishing the image (session, completion, summary,
// next image). Also the wiring of the page's buttons.

import { api } from "./api.js";
import { formatSeconds, todayText } from "./panels.js";

const $ = (id) => document.getElementById(id);
const EMBEDDING_POLL_MS = 1500;
const HOLD_CHECK_MS = 30_000;

export class Lifecycle {
  constructor(app) {
    this.app = app;
    this.channel = "BroadcastChannel" in window ? new BroadcastChannel(`sade-image-${app.imageId}`) : null;
    this.tabId = crypto.randomUUID();
    this.prefetched = [];
    this.finishing = false; // Done or Skip under way: a second press does nothing
    this.finished = null; // {skip, active} once the image is marked: Done again only shows the summary
  }

  async loadModel() {
    try {
      const model = await api("GET", "/api/model/");
      this.app.model = model;
      const badge = $("model-badge");
      badge.textContent = `model: ${model.name} · ${model.precision}${model.is_official ? "" : " (not Meta's checkpoint)"}`;
      badge.classList.toggle("warn", !model.is_official);
      const details = [
        ["name", model.name], ["type", model.model_type], ["round", model.round],
        ["precision", model.precision], ["trained on", model.trained_on], ["Meta's official checkpoint", model.is_official ? "yes" : "no"],
      ];
      const dl = document.createElement("dl");
      for (const [key, value] of details) {
        const dt = document.createElement("dt");
        dt.textContent = key;
        const dd = document.createElement("dd");
        dd.textContent = String(value);
        dl.append(dt, dd);
      }
      const parts = [dl];
      if (model.hint) {
        const hint = document.createElement("p");
        hint.className = "model-hint";
        hint.textContent = model.hint;
        parts.push(hint);
        const note = $("model-note");
        $("model-note-text").textContent = model.hint;
        note.hidden = localStorage.getItem("sade-model-note-dismissed") === model.name;
      }
      $("model-details").replaceChildren(...parts);
    } catch (error) {
      $("model-badge").textContent = "model unavailable";
      this.app.status(`The model cannot be loaded: ${error.message}. Brush and eraser still work.`, "error");
    }
  }

  /** Asks the server to have the embedding ready; says "preparing…" until it is. */
  async prepare() {
    let info;
    try {
      info = await api("POST", `/api/images/${this.app.imageId}/prepare/`);
    } catch (error) {
      this.app.status(`The image cannot be prepared: ${error.message}`, "error");
      return;
    }
    this.app.imageInfo = info;
    this.showHold(info);
    while (info.embedding_status !== "done") {
      if (info.embedding_status === "failed") {
        this.app.status(`The model cannot answer on this image (${info.embedding_error}). Brush and eraser still work.`, "error");
        document.body.dataset.embedding = "failed";
        return;
      }
      document.body.dataset.embedding = "preparing";
      this.app.status("Preparing… the model is computing this image's embedding; clicks will be answered as soon as it is ready.");
      await new Promise((resolve) => setTimeout(resolve, EMBEDDING_POLL_MS));
      try {
        info = await api("GET", `/api/images/${this.app.imageId}/`);
      } catch {
        // keep polling
      }
    }
    this.app.status("Ready: click the object (+), right-click to remove an area (−), drag a box, or paint. ? shows every shortcut.", "ok");
    document.body.dataset.embedding = "ready";
  }

  /** Fetches the next image's file and queues its embedding while this one is annotated. */
  async prefetchNext() {
    const { datasetId, stage, audit } = this.app.config;
    if (audit) return; // an audit's next image is the reviewer's, not the stage queue's
    try {
      const upcoming = await api("GET", `/api/datasets/${datasetId}/upcoming-images/?stage=${stage}&count=1`);
      for (const image of upcoming.filter((im) => im.id !== this.app.imageId)) {
        const preload = new Image();
        preload.src = image.file_url;
        const prepared = await api("POST", `/api/images/${image.id}/prepare/`);
        this.prefetched.push({ id: image.id, element: preload, embedding: prepared.embedding_status });
      }
    } catch {
      // prefetching only saves time; the next image still opens without it
    }
  }

  watch() {
    if (this.channel) {
      this.channel.onmessage = ({ data }) => {
        if (data.tab === this.tabId) return;
        if (data.type === "hello") this.broadcast("here");
        if (data.type === "hello" || data.type === "here") this.otherTab();
        if (data.type === "changed") this.app.masks.load().catch(() => {});
      };
      this.broadcast("hello");
    }
    setInterval(async () => {
      try {
        this.showHold(await api("GET", `/api/images/${this.app.imageId}/`));
      } catch {
        // the next check will tell
      }
    }, HOLD_CHECK_MS);
    window.addEventListener("pagehide", () => {
      this.app.flushDeletes({ keepalive: true });
      this.app.session.heartbeat({ keepalive: true }).catch(() => {});
    });
    // A mask being made (not accepted yet) lives only in this page: the browser asks before a
    // reload, Back or closing the tab drops it. (Accepted masks are safe: their saves are kept
    // in localStorage and sent again on the next load.)
    window.addEventListener("beforeunload", (event) => {
      if (this.app.editor.isEmpty()) return;
      event.preventDefault();
      event.returnValue = "";
    });
  }

  broadcast(type) {
    if (this.channel) this.channel.postMessage({ type, tab: this.tabId });
  }

  otherTab() {
    const banner = $("hold-banner");
    banner.hidden = false;
    banner.dataset.kind = "tab";
    banner.textContent =
      "This image is also open in another tab of yours. Masks saved there appear here; if both tabs edit " +
      "the same mask, the later save is refused instead of overwriting the other.";
  }

  showHold(info) {
    this.app.imageInfo = info;
    const me = this.app.config.user.id;
    const banner = $("hold-banner");
    const heldByOther = info.held_by && info.held_by !== me && new Date(info.held_until) > new Date();
    if (heldByOther) {
      const until = new Date(info.held_until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      banner.hidden = false;
      banner.dataset.kind = "hold";
      banner.textContent =
        `Annotator #${info.held_by} holds this image until ${until}. You can look and add masks; ` +
        "their masks appear here as they save them.";
    } else if (banner.dataset.kind === "hold") {
      banner.hidden = true;
    }
  }

  /** Done (or skip): close the session, mark the image, show the summary, then the next image. */
  async finish(skip) {
    if (this.finishing) return;
    this.finishing = true;
    try {
      // Marked already (the summary was closed with Esc): only the summary again.
      if (this.finished) await this.showSummary();
      else await this.finishOnce(skip);
    } finally {
      this.finishing = false;
    }
  }

  async finishOnce(skip) {
    const { app } = this;
    if (!app.editor.isEmpty()) {
      app.status("Accept (Enter) or clear (Esc) the current mask first.", "error");
      return;
    }
    if (app.saves.items.length) {
      app.saves.flush();
      app.status(`${app.saves.items.length} mask(s) are not saved yet; they are being retried. Try again in a moment.`, "error");
      return;
    }
    await app.flushDeletes();
    let session = null;
    try {
      session = await app.session.finish();
    } catch (error) {
      app.status(`Session not closed: ${error.message}`, "error");
    }
    try {
      const { audit } = app.config;
      // Reviewing an audit's sample: Done compares the image's masks with the originals.
      if (audit) await api("POST", audit.doneUrl);
      else await api("POST", `/api/images/${app.imageId}/${skip ? "release" : "complete"}/`, skip ? { skip: true } : undefined);
    } catch (error) {
      // Not held by this annotator (an admin's view, an expired hold): nothing to mark.
      if (error.status !== 409) app.status(`The image could not be marked: ${error.message}`, "error");
    }
    this.finished = { skip, active: session ? session.active_seconds : app.clock.totalMs() / 1000 };
    await this.showSummary();
  }

  /** The summary of the finished image, its figures from the server's list as it is now
   *  (masks added since, here or in another tab, included). */
  async showSummary() {
    const { app } = this;
    const { skip, active } = this.finished;
    await app.masks.load().catch(() => {});
    const today = await app.refreshToday();
    const counts = app.masks.counts();
    const lines = [
      `${skip ? "Skipped" : "Done"}: ${counts.total} mask(s) on this image, ${counts.mine} made by you, ` +
        `in ${formatSeconds(active)} of active time.`,
      counts.secondsPerMask === null ? "" : `${formatSeconds(counts.secondsPerMask)} per mask of yours.`,
      today ? `Today (UTC, all your work): ${todayText(today)}.` : "",
    ];
    $("finish-details").replaceChildren(
      ...lines.filter(Boolean).map((text) => {
        const p = document.createElement("p");
        p.textContent = text;
        return p;
      }),
    );
    $("finish-dialog").showModal();
  }

  async next() {
    const { datasetId, stage, homeUrl, annotateUrl, audit } = this.app.config;
    if (audit) {
      try {
        const next = await api("POST", audit.nextUrl);
        location.href = next.annotate_url || homeUrl;
      } catch {
        location.href = homeUrl;
      }
      return;
    }
    try {
      const image = await api("POST", `/api/datasets/${datasetId}/next-image/`, { stage });
      location.href = image ? annotateUrl.replace("{id}", image.id) : homeUrl;
    } catch {
      location.href = homeUrl;
    }
  }
}

/** The page's buttons and the mask list's per-mask buttons. */
export function wireControls(app) {
  document.querySelectorAll("[data-tool]").forEach((button) => {
    button.addEventListener("click", () => app.setTool(button.dataset.tool));
  });
  $("brush-size").addEventListener("input", () => {
    $("brush-size-value").textContent = $("brush-size").value;
    app.canvasView.render();
  });
  const click = (id, fn) => $(id).addEventListener("click", fn);
  click("undo", () => app.undo());
  click("redo", () => app.redo());
  click("clear", () => app.escape());
  click("accept", () => app.accept());
  click("hover-toggle", () => app.toggleHover());
  click("everything", () => app.everything());
  click("cutout", () => app.cutout());
  click("help-toggle", () => app.toggleHelp());
  click("model-badge", () => $("model-dialog").showModal());
  click("proposals-accept-all", () => app.acceptAllProposals());
  click("proposals-clear", () => app.proposals.clear());
  click("toggle-masks", () => app.toggleAllMasks());
  click("select-none", () => app.masks.selectNone());
  click("skip", () => app.lifecycle.finish(true));
  click("done", () => app.lifecycle.finish(false));
  click("model-note-dismiss", () => {
    $("model-note").hidden = true;
    localStorage.setItem("sade-model-note-dismissed", app.model ? app.model.name : "");
  });
  // Only "Next image" moves on; Esc closes the summary and stays on the image.
  click("finish-next", () => app.lifecycle.next());
  $("mask-list").addEventListener("click", (event) => {
    const item = event.target.closest("li[data-id]");
    if (!item) return;
    const id = Number(item.dataset.id);
    const act = event.target.dataset.act;
    if (act === "hide") {
      const entry = app.masks.get(id);
      entry.hidden = !entry.hidden;
      app.masks.changed();
    } else if (act === "edit") app.editMask(id);
    else if (act === "delete") app.deleteMask(id);
    else if (act === "keep") app.keepMask(id);
    else if (act !== "label") app.masks.select(id, event.shiftKey || event.ctrlKey || event.metaKey);
  });
  // A row's label <select>; then the keys go back to the image (a focused select takes them).
  $("mask-list").addEventListener("change", (event) => {
    const item = event.target.closest("li[data-id]");
    if (!item || event.target.dataset.act !== "label") return;
    app.relabel(Number(item.dataset.id), event.target.value === "" ? null : Number(event.target.value));
    app.canvas.focus();
  });
  $("label-filter").addEventListener("change", (event) => {
    app.labels.setFilter(event.target.value);
    app.canvas.focus();
  });
  $("label-choices").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-label-id]");
    if (!button) return;
    app.chooseLabel(button.dataset.labelId === "" ? null : Number(button.dataset.labelId));
    app.canvas.focus();
  });
}
