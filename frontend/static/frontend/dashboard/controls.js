/* The dashboard's launch forms, all through the API's own endpoints:
   - an automatic pass or a stage 2 pre-fill over a stage, a list of image ids or the whole
     dataset, with a preset (paper, relaxed): Preview (POST .../automatic-passes/preview/) shows
     what it would touch and warns when nothing will pass the thresholds; Launch posts the very
     request that was previewed, and its message follows the pass until it ends (saying why when
     it wrote no mask);
   - a training round (POST /api/training-rounds/);
   - a bulk move of images between stages (POST .../images/stage/ with from_stage/from_status),
     the number of images it moves counted from the dashboard's stats.
   Text goes in with textContent only. */
(function () {
  "use strict";

  const dash = window.sadeDash;
  const { page, el } = dash;
  const ACTIVE = new Set(["queued", "running"]);
  const NOUN = { prefill: "Pre-fill", automatic: "Automatic pass" };
  let previewed = null; // the JSON of the request the shown preview is about
  let startedPass = null;
  let latestStats = page.stats;

  function say(id, text, isError) {
    const message = document.getElementById(id);
    message.className = isError ? "dash-message error" : "dash-message";
    message.textContent = text;
    return message;
  }

  /* "12, 15-20" → [12, 15, 16, ..., 20]; throws with the token at fault. */
  function parseIds(text) {
    const ids = [];
    for (const token of text.split(/[\s,]+/).filter(Boolean)) {
      const range = token.match(/^(\d+)(?:-(\d+))?$/);
      if (!range) throw new Error(`'${token}' is not an image id or a range like 15-20`);
      const first = Number(range[1]);
      const last = range[2] === undefined ? first : Number(range[2]);
      if (last < first || last - first > 100000) throw new Error(`'${token}' is not a range this form takes`);
      for (let id = first; id <= last; id++) ids.push(id);
    }
    if (!ids.length) throw new Error("give at least one image id");
    return ids;
  }

  function passRequest(form) {
    const data = new FormData(form);
    const body = { kind: data.get("kind"), preset: data.get("preset") };
    const scope = data.get("scope");
    if (scope === "stage") body.stage = Number(data.get("stage"));
    if (scope === "selection") body.image_ids = parseIds(data.get("image_ids"));
    if (scope === "whole") body.whole_dataset = true;
    if (data.get("points_per_side") !== "") body.config = { points_per_side: Number(data.get("points_per_side")) };
    return body;
  }

  function describePreset(form) {
    const t = page.presets[form.elements.preset.value][form.elements.kind.value];
    const crops = t.crop_n_layers ? `, ${t.crop_n_layers} layers of zoomed crops` : ", no crops";
    const grid = form.elements.points_per_side.value || t.points_per_side;
    say("pass-preset", `Keeps masks with predicted IoU > ${t.pred_iou_thresh} and stability ≥ ${t.stability_score_thresh}; ${grid}×${grid} points${crops}.`);
  }

  function formChanged(form) {
    const scope = form.elements.scope.value;
    form.querySelectorAll("[data-scope]").forEach((label) => {
      label.hidden = label.dataset.scope !== scope;
    });
    describePreset(form);
    previewed = null;
    form.querySelector("button[type=submit]").disabled = true;
    document.getElementById("pass-preview").hidden = true;
  }

  function drawPreview(preview) {
    const box = document.getElementById("pass-preview");
    const where = preview.stage ? `in stage ${preview.stage}` : "selected";
    const kept = preview.left_alone;
    const lines = [
      `Would segment ${preview.images_to_process} of the ${preview.selected_images} images ${where}.`,
      `Left as people left them: ${kept.done_images} images marked done, ${kept.reviewed_masks} model masks kept or fixed, ${kept.people_masks} masks people drew.`,
      `Replaces ${preview.masks_replaced} unreviewed masks an earlier run of this model wrote on those images.`,
      `Model: ${preview.model.name}${preview.model.untrained ? " (untrained cold start)" : ""}.`,
    ];
    const list = el("ul");
    lines.forEach((line) => list.append(el("li", line)));
    preview.warnings.forEach((warning) => list.append(el("li", warning, "dash-warning")));
    box.replaceChildren(el("strong", `${NOUN[preview.kind]} preview (preset ${preview.preset})`), list);
    box.hidden = false;
  }

  async function previewPass(form) {
    let request;
    try {
      request = passRequest(form);
    } catch (error) {
      say("pass-message", error.message, true);
      return;
    }
    say("pass-message", "Counting what it would touch…");
    try {
      const { response, body } = await dash.postJSON(page.urls.preview, request);
      if (!response.ok) {
        formChanged(form);
        say("pass-message", `Preview refused: ${dash.errorText(body)}`, true);
        return;
      }
      drawPreview(body);
      previewed = JSON.stringify(request);
      form.querySelector("button[type=submit]").disabled = body.images_to_process === 0;
      say("pass-message", body.images_to_process ? "Launch runs exactly this." : "Nothing to launch.");
    } catch (error) {
      say("pass-message", `Could not reach the server: ${error.message}`, true);
    }
  }

  async function launchPass(event) {
    event.preventDefault();
    const form = event.target;
    if (previewed === null) return;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say("pass-message", "Launching…");
    try {
      const { response, body } = await dash.postJSON(page.urls.passes, JSON.parse(previewed));
      if (!response.ok) {
        say("pass-message", `Launch refused: ${dash.errorText(body)}`, true);
        return;
      }
      startedPass = body.id;
      formChanged(form);
      say("pass-message", `${NOUN[body.kind]} #${body.id} queued on ${body.total_images} images; gpu workers run it.`);
      await dash.refresh();
    } catch (error) {
      say("pass-message", `Could not reach the server: ${error.message}`, true);
      button.disabled = false;
    }
  }

  /* The launch message follows the pass it started until it ends. */
  function followPass({ jobs }) {
    if (startedPass === null) return;
    const job = jobs.find((j) => j.kind === "automatic_pass" && j.id === startedPass);
    if (!job) return;
    const progress = `${job.done} / ${job.total} images`;
    if (ACTIVE.has(job.status)) {
      say("pass-message", `Pass #${job.id} ${job.status}: ${progress} done, ${job.detail}.`);
    } else {
      say("pass-message", `Pass #${job.id} ${job.status}: ${progress}, ${job.detail}${job.error ? ` ${job.error}` : ""}`, job.status !== "done");
    }
  }

  async function startRound(event) {
    event.preventDefault();
    const button = event.target.querySelector("button[type=submit]");
    button.disabled = true;
    say("round-message", "Starting a training round…");
    try {
      const { response, body } = await dash.postJSON(page.urls.rounds, { dataset: page.dataset.id });
      if (!response.ok) {
        say("round-message", `Round refused: ${dash.errorText(body)}`, true);
        return;
      }
      say("round-message", `Training round #${body.id} queued; follow it in Jobs.`);
      await dash.refresh();
    } catch (error) {
      say("round-message", `Could not reach the server: ${error.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  function matching(form) {
    const byStage = latestStats.images.by_stage[form.elements.from_stage.value] || {};
    const status = form.elements.from_status.value;
    return status ? byStage[status] || 0 : Object.values(byStage).reduce((a, b) => a + b, 0);
  }

  function countMove() {
    const form = document.getElementById("stage-form");
    const n = matching(form);
    const status = form.elements.from_status.value;
    say("stage-count", `${n} ${status || ""} image${n === 1 ? "" : "s"} in stage ${form.elements.from_stage.value} would move to stage ${form.elements.stage.value} (pending).`);
    form.querySelector("button[type=submit]").disabled = n === 0;
  }

  async function moveImages(event) {
    event.preventDefault();
    const form = event.target;
    const request = { from_stage: Number(form.elements.from_stage.value), stage: Number(form.elements.stage.value) };
    if (form.elements.from_status.value) request.from_status = form.elements.from_status.value;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say("stage-message", "Moving…");
    try {
      const { response, body } = await dash.postJSON(page.urls.move, request);
      if (!response.ok) {
        say("stage-message", `Move refused: ${dash.errorText(body)}`, true);
        return;
      }
      say("stage-message", `${body.updated} images moved to stage ${body.stage} (${body.status}).`);
      await dash.refresh();
    } catch (error) {
      say("stage-message", `Could not reach the server: ${error.message}`, true);
    } finally {
      countMove();
    }
  }

  function init() {
    const form = document.getElementById("pass-form");
    // The kind's default stage: pre-fills work on stage 2, automatic passes on stage 3.
    form.elements.stage.value = "2";
    form.elements.kind.addEventListener("change", () => {
      form.elements.stage.value = form.elements.kind.value === "prefill" ? "2" : "3";
    });
    form.addEventListener("input", () => formChanged(form));
    form.addEventListener("change", () => formChanged(form));
    form.addEventListener("submit", launchPass);
    document.getElementById("pass-preview-button").addEventListener("click", () => previewPass(form));
    formChanged(form);
    document.getElementById("round-form").addEventListener("submit", startRound);
    const stageForm = document.getElementById("stage-form");
    stageForm.addEventListener("change", countMove);
    stageForm.addEventListener("submit", moveImages);
  }

  dash.renderers.push(followPass, ({ stats }) => {
    latestStats = stats;
    countMove();
  });
  init();
})();
