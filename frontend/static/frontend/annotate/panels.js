// The sidebar and toolbar text: candidate buttons, the current mask, pending saves, the stage 2
// and Everything panels, the session summary. Pure DOM updates from the app's state.

import { sizeOrder } from "./editor.js";

const $ = (id) => document.getElementById(id);

export function formatSeconds(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}

/** Buttons for the model's candidates, largest first and named by size (whole / part /
 *  sub-part, see sizeOrder), each with its predicted IoU; the number is the key choosing it. */
export function renderCandidates(app) {
  const { candidates, chosen } = app.editor.state;
  const box = $("candidates");
  if (!candidates.length) {
    box.replaceChildren();
    return;
  }
  const names = candidates.length === 3 ? ["whole", "part", "sub-part"] : [];
  const buttons = sizeOrder(candidates).map((i, rank) => {
    const candidate = candidates[i];
    const button = document.createElement("button");
    button.type = "button";
    button.className = `candidate${i === chosen ? " active" : ""}`;
    button.dataset.index = i;
    const iou = candidate.predicted_iou == null ? "" : ` · IoU ${candidate.predicted_iou.toFixed(2)}`;
    button.textContent = `${rank + 1} ${names[rank] || "mask"}${iou}`;
    button.title = "choose this mask (1 2 3, C or Tab cycles)";
    button.addEventListener("click", () => app.editor.choose(i));
    return button;
  });
  box.replaceChildren(...buttons);
}

export function renderCurrent(app) {
  const { editor } = app;
  const s = editor.state;
  const info = $("current-info");
  if (editor.isEmpty()) {
    info.textContent = app.tool === "prompt"
      ? "Click the object (left +, right or Alt/Shift −), drag a box, or paint with the brush (B)."
      : `Paint the mask with the ${app.tool}; Enter accepts.`;
  } else {
    const parts = [];
    if (editor.editing) parts.push(`editing mask #${editor.editing.id}`);
    const plus = s.labels.filter((l) => l === 1).length;
    if (s.points.length) parts.push(`${plus} + / ${s.labels.length - plus} − points`);
    if (s.box) parts.push("a box");
    if (s.strokes.length) parts.push(`${s.strokes.length} brush strokes`);
    if (editor.busy) parts.push("asking the model…");
    info.textContent = `${parts.join(", ")}. Enter accepts, Esc clears.`;
  }
  $("undo").disabled = !editor.canUndo() && app.deletions.length === 0;
  $("redo").disabled = !editor.canRedo();
  $("accept").disabled = editor.isEmpty();
  document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("active", b.dataset.tool === app.tool));
}

export function renderPending(app) {
  const items = app.saves.items;
  $("pending-title").hidden = items.length === 0;
  const rows = items.map((item) => {
    const li = document.createElement("li");
    li.className = `pending-item ${item.state}`;
    li.dataset.key = item.key;
    const what = item.kind === "create" ? "new mask" : `edit of mask #${item.maskId}`;
    const state = {
      saving: "saving…",
      retrying: `not saved yet, retrying (${item.error || "no answer"})`,
      rejected: `refused: ${item.error}`,
    }[item.state];
    li.textContent = `${what}: ${state} `;
    if (item.state === "rejected") {
      const discard = document.createElement("button");
      discard.type = "button";
      discard.textContent = "Discard";
      discard.addEventListener("click", () => app.saves.discard(item.key));
      li.append(discard);
    } else if (item.state === "retrying") {
      const retry = document.createElement("button");
      retry.type = "button";
      retry.textContent = "Retry now";
      retry.addEventListener("click", () => app.saves.send(item));
      li.append(retry);
    }
    return li;
  });
  $("pending-list").replaceChildren(...rows);
}

export function renderPanels(app) {
  const count = app.masks.entries.size;
  const shown = app.masks.shownCount();
  $("mask-count").textContent = shown === count ? `(${count})` : `(${shown} of ${count})`;
  $("toggle-masks").textContent = app.masks.allHidden ? "Show all" : "Hide all";

  const prefill = app.masks.prefillCounts();
  const showPrefill = app.config.stage === 2 || prefill.total > 0 || prefill.deleted > 0;
  $("prefill-panel").hidden = !showPrefill;
  if (showPrefill) {
    $("prefill-info").textContent = prefill.total + prefill.deleted === 0
      ? "The model pre-filled no mask on this image: add every object."
      : `${prefill.unreviewed} to review, ${prefill.kept} kept, ${prefill.edited} fixed, ${prefill.deleted} deleted. ` +
        "Pre-filled masks are orange with a dashed box: keep (K), fix (R) or delete each, then add what the model missed.";
  }

  const proposals = app.proposals;
  $("proposals-panel").hidden = !proposals.running && !proposals.answer;
  $("everything").disabled = proposals.running;
  if (proposals.running) $("proposals-info").textContent = "The model is segmenting the whole image…";
  else if (proposals.answer) {
    const n = proposals.items.length;
    $("proposals-info").textContent = n
      ? `${n} proposals (yellow). Click one to take it into the editor; Shift+A accepts all; Esc dismisses.`
      : proposals.answer.masks.length
        ? "No proposal left."
        : `No proposal: the model kept no mask at '${proposals.confidence}'.`;
  }
  $("proposals-accept-all").disabled = proposals.items.length === 0;
}

export function renderSummary(app) {
  const active = app.clock.totalMs() / 1000;
  $("active-time").textContent = formatSeconds(active);
  const counts = app.masks.counts();
  $("image-masks").textContent = `${counts.total} (${counts.mine} yours)`;
  $("seconds-per-mask").textContent = counts.secondsPerMask === null ? "–" : formatSeconds(counts.secondsPerMask);
  $("browser-session").textContent = todayText(app.today) || "–";
  $("mask-timer").textContent = formatSeconds(app.editor.secondsSoFar());
}

/** The annotator's work today as the server counts it (GET /api/me/today/), in words. */
export function todayText(today) {
  if (!today) return "";
  const perMask = today.timed_masks ? `, ${formatSeconds(today.seconds / today.timed_masks)} per mask` : "";
  return `${today.masks} masks on ${today.images} images${perMask}`;
}
