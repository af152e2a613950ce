/* The dataset dashboard: draws the charts and tables from the stats the page was served with,
   then, while any job (pass, training round, import, export) is queued or running, polls the
   API (GET /api/datasets/{id}/stats/, /exports/ and /jobs/) and redraws. The export form posts
   to the API; its validation errors are shown as it words them. jobs.js (the jobs panel) and
   controls.js (launch forms) use the helpers and the refresh exposed as window.sadeDash.
   Text goes in with textContent only. */
(function () {
  "use strict";

  const ACTIVE = new Set(["queued", "running"]);
  const page = JSON.parse(document.getElementById("dashboard-data").textContent);
  const charts = window.sadeCharts;
  let pollTimer = null;
  // The export this page started last: its message follows it until it ends.
  let startedExport = null;
  // What jobs.js and controls.js add to every redraw: fn({stats, exports, jobs}).
  const renderers = [];

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    cells.forEach((cell) => tr.appendChild(cell));
    return tr;
  }

  function num(value, digits) {
    if (value === null || value === undefined) return el("td", "–", "num quiet");
    const text = digits === undefined ? value.toLocaleString("en-US") : value.toFixed(digits);
    return el("td", text, "num");
  }

  function duration(seconds) {
    const minutes = Math.round(seconds / 60);
    return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
  }

  function card(name) {
    return document.querySelector(`[data-card="${name}"]`);
  }

  function drawCharts(stats) {
    for (const [name, configOf] of Object.entries(charts.configs)) {
      const section = card(name);
      charts.drawChart(section, section.querySelector("canvas"), configOf(stats, page));
    }
  }

  function drawSummary(stats) {
    const all = stats.masks_per_image.all;
    const active = stats.model_versions.find((version) => version.is_active);
    const parts = [
      ["images", stats.images.total.toLocaleString("en-US")],
      ["masks", all.masks.toLocaleString("en-US")],
      ["masks per image (images with masks)", all.mean === null ? "–" : all.mean.toFixed(1)],
      ["annotators", String(stats.annotators.length)],
      ["active model", active ? active.name : "none"],
    ];
    const summary = document.getElementById("summary");
    summary.replaceChildren();
    parts.forEach(([label, value], i) => {
      if (i) summary.append(" · ");
      summary.append(el("strong", value), ` ${label}`);
    });
  }

  function drawAnnotators(stats) {
    const table = document.getElementById("annotator-table");
    table.hidden = stats.annotators.length === 0;
    table.tBodies[0].replaceChildren(
      ...stats.annotators.map((a) =>
        row([
          el("th", a.username),
          num(a.sessions),
          el("td", duration(a.active_seconds), "num"),
          num(a.masks_made),
          a.masks_per_hour === null ? el("td", "no active time", "num quiet") : num(a.masks_per_hour, 1),
        ]),
      ),
    );
  }

  function drawModels(stats) {
    const table = document.getElementById("model-table");
    const versions = stats.model_versions;
    // The metric columns are the headers' (rendered from one list on the server), in their order.
    const keys = [...table.tHead.querySelectorAll("th[data-metric]")].map((th) => th.dataset.metric);
    table.hidden = versions.length === 0;
    document.getElementById("models-none").hidden = versions.length > 0;
    // With no version at all, "none registered" says it; "none evaluated" would repeat it.
    if (!versions.length) card("models").querySelector(".dash-empty").hidden = true;
    table.tBodies[0].replaceChildren(
      ...versions.map((v) => {
        const name = el("th", v.name);
        if (v.is_active) name.append(" ", el("span", "active", "dash-status done"));
        const cells = [name, num(v.round), num(v.masks_in_dataset)];
        if (!v.heldout) {
          const cell = el("td", "not evaluated", "quiet");
          cell.colSpan = keys.length;
          cells.push(cell);
        } else {
          keys.forEach((key) => cells.push(num(v.heldout[key], key.startsWith("noc") ? 2 : 3)));
        }
        return row(cells);
      }),
    );
  }

  function drawPasses(stats) {
    const list = document.getElementById("passes");
    const passes = stats.automatic_passes;
    card("passes").querySelector(".dash-empty").hidden = passes.length > 0;
    list.replaceChildren(
      ...passes.map((run) => {
        const item = el("li");
        item.dataset.pass = run.id;
        const title = el("span", `#${run.id} ${run.kind} · ${run.model_version_name} `);
        title.append(el("span", run.status, `dash-status ${run.status}`));
        const bar = el("progress");
        bar.max = Math.max(run.total_images, 1);
        bar.value = run.done_images;
        const failed = run.failed_images ? `, ${run.failed_images} failed` : "";
        const text = `${run.done_images} / ${run.total_images} images done${failed}, ${run.masks.toLocaleString("en-US")} masks so far`;
        item.append(title, bar, el("span", text, "dash-pass-progress"));
        // Why a finished pass kept no mask (e.g. the cold-start model under strict thresholds).
        if (run.note) item.append(el("span", run.note, "dash-pass-note"));
        return item;
      }),
    );
  }

  function filtersText(filters) {
    const entries = Object.entries(filters);
    return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(", ") : "all masks";
  }

  /* instances.json, or results.json for a COCO export in results format. */
  function cocoFile(exp) {
    return ((exp.report && exp.report.files) || ["instances.json"])[0];
  }

  function fileLinks(exp) {
    const cell = el("td", null, "dash-files");
    if (exp.status === "failed") {
      cell.append(el("span", exp.error || "failed", "quiet"));
      return cell;
    }
    if (!exp.download_url) {
      cell.append(el("span", "not ready", "quiet"));
      return cell;
    }
    if (exp.format === "coco") {
      cell.append(link(exp.download_url, cocoFile(exp)));
      return cell;
    }
    cell.append(link(exp.download_url, "manifest.json"));
    (exp.report.shards || []).forEach((shard, i) => cell.append(link(`${exp.download_url}?shard=${i}`, shard.file)));
    return cell;
  }

  function drawExports(exports) {
    const recent = exports.slice(0, page.recent_exports);
    const table = document.getElementById("export-table");
    table.hidden = recent.length === 0;
    card("exports").querySelector(".dash-empty").hidden = recent.length > 0;
    table.tBodies[0].replaceChildren(
      ...recent.map((exp) => {
        const status = el("td");
        status.append(el("span", exp.status, `dash-status ${exp.status}`));
        const tr = row([
          el("td", String(exp.id)),
          el("td", exp.format === "coco" ? "COCO" : "SA-1B"),
          el("td", filtersText(exp.filters)),
          status,
          el("td", `${exp.progress_done} / ${exp.progress_total}`, "num"),
          num(exp.report.masks),
          el("td", new Date(exp.created_at).toLocaleString()),
          fileLinks(exp),
        ]);
        tr.dataset.export = exp.id;
        return tr;
      }),
    );
  }

  function link(href, text) {
    const a = el("a", text);
    a.href = href;
    return a;
  }

  /* "Export #N queued" becomes its state when it ends: done with its download links, failed
     with the reason, cancelled. */
  function drawExportMessage(exports) {
    if (startedExport === null) return;
    const exp = exports.find((e) => e.id === startedExport);
    if (!exp) return;
    const message = document.getElementById("export-message");
    message.className = "dash-message";
    if (ACTIVE.has(exp.status)) {
      message.textContent = `Export #${exp.id} ${exp.status}: ${exp.progress_done} / ${exp.progress_total} images written.`;
      return;
    }
    message.replaceChildren(`Export #${exp.id} ${exp.status}`);
    if (exp.status === "done" && exp.download_url) {
      message.append(": download ", link(exp.download_url, exp.format === "coco" ? cocoFile(exp) : "manifest.json"));
    } else if (exp.error) {
      message.className = "dash-message error";
      message.append(`: ${exp.error}`);
    }
  }

  function render(stats, exports, jobs) {
    drawSummary(stats);
    drawCharts(stats);
    drawAnnotators(stats);
    drawModels(stats);
    drawPasses(stats);
    drawExports(exports);
    drawExportMessage(exports);
    renderers.forEach((draw) => draw({ stats, exports, jobs }));
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    const running =
      stats.automatic_passes.some((r) => ACTIVE.has(r.status)) ||
      exports.some((e) => ACTIVE.has(e.status)) ||
      jobs.some((job) => job.active);
    clearTimeout(pollTimer);
    pollTimer = running ? setTimeout(refresh, page.poll_ms) : null;
    if (running) document.getElementById("updated").append(`, refreshing every ${page.poll_ms / 1000} s while work runs`);
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    return response.json();
  }

  async function refresh() {
    try {
      const [stats, exports, jobs] = await Promise.all([
        getJSON(page.urls.stats),
        getJSON(page.urls.exports),
        getJSON(page.urls.jobs),
      ]);
      render(stats, exports, jobs);
    } catch (error) {
      document.getElementById("updated").textContent = `Could not refresh (${error.message}); retrying.`;
      clearTimeout(pollTimer);
      pollTimer = setTimeout(refresh, page.poll_ms);
    }
  }

  /* DRF's 400 answers: {"field": ["message", ...], ...} or {"detail": "message"}. */
  function errorText(body) {
    if (!body || typeof body !== "object") return "the server refused it";
    return Object.entries(body)
      .map(([field, messages]) => {
        const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
        return field === "detail" || field === "non_field_errors" ? text : `${field}: ${text}`;
      })
      .join("; ");
  }

  function exportRequest(form) {
    const data = new FormData(form);
    const body = { format: data.get("format") };
    if (body.format === "sa1b") body.shard_size = Number(data.get("shard_size"));
    if (body.format === "coco") {
      body.ids = data.get("ids");
      body.coco_format = data.get("coco_format");
    }
    for (const key of ["stage", "model_version", "min_predicted_iou", "min_stability_score"]) {
      if (data.get(key) !== "") body[key] = Number(data.get(key));
    }
    if (data.get("source") !== "") body.source = data.get("source");
    return body;
  }

  async function startExport(event) {
    event.preventDefault();
    const form = event.target;
    const message = document.getElementById("export-message");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    message.className = "dash-message";
    message.textContent = "Starting the export…";
    try {
      const { response, body } = await postJSON(page.urls.exports, exportRequest(form));
      if (!response.ok) {
        message.className = "dash-message error";
        message.textContent = `Export refused: ${errorText(body)}`;
        return;
      }
      message.textContent = `Export #${body.id} queued; a cpu worker writes it.`;
      startedExport = body.id;
      await refresh();
    } catch (error) {
      message.className = "dash-message error";
      message.textContent = `Could not reach the server: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  /* A JSON request with the session's CSRF token; the answer's body parsed (null if none). */
  async function sendJSON(method, url, data) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": document.querySelector("[name=csrfmiddlewaretoken]").value,
      },
      body: data === undefined ? undefined : JSON.stringify(data),
    });
    const body = await response.json().catch(() => null);
    return { response, body };
  }

  function postJSON(url, data) {
    return sendJSON("POST", url, data);
  }

  window.sadeDash = { page, el, row, link, sendJSON, postJSON, errorText, refresh, renderers };

  function init() {
    charts.applyTheme();
    const form = document.getElementById("export-form");
    form.addEventListener("submit", startExport);
    form.elements.format.addEventListener("change", () => {
      const sa1b = form.elements.format.value === "sa1b";
      form.elements.shard_size.disabled = !sa1b;
      form.elements.ids.disabled = sa1b;
      form.elements.coco_format.disabled = sa1b;
    });
    render(page.stats, page.exports, page.jobs);
  }

  // After every deferred script has run, so jobs.js and controls.js have added their parts.
  document.addEventListener("DOMContentLoaded", init);
})();
