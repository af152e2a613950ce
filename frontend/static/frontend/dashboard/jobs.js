/* The dashboard's jobs panel: every pass, training round, import and export of the dataset
   (GET /api/datasets/{id}/jobs/, polled by dashboard.js while any is active), with its status,
   progress (a round's phase, step of total, last loss and ETA), details, and a Cancel button
   that posts to the job's own cancel endpoint. Text goes in with textContent only. */
(function () {
  "use strict";

  const dash = window.sadeDash;
  const { el, row } = dash;
  const KINDS = { automatic_pass: "pass", training_round: "training round", import: "import", export: "export" };

  function eta(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.max(0, Math.round(seconds));
    return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  }

  function progressCell(job) {
    const cell = el("td", null, "dash-job-progress");
    if (job.total) {
      const bar = el("progress");
      bar.max = job.total;
      bar.value = Math.min(job.done, job.total);
      cell.append(bar, el("span", `${job.done.toLocaleString("en-US")} / ${job.total.toLocaleString("en-US")} ${job.unit}`));
    } else if (job.done) {
      cell.append(el("span", `${job.done.toLocaleString("en-US")} ${job.unit}`));
    } else {
      cell.append(el("span", job.active ? "waiting for a worker" : "–", "quiet"));
    }
    return cell;
  }

  function roundText(progress, job) {
    const parts = [];
    if (progress.phase) parts.push(`phase ${progress.phase}`);
    if (progress.total_steps) parts.push(`step ${progress.step} / ${progress.total_steps}`);
    if (progress.loss !== null) parts.push(`loss ${progress.loss.toFixed(4)}`);
    if (job.active && progress.eta_seconds !== null) parts.push(`ETA ${eta(progress.eta_seconds)}`);
    if (progress.train_masks) parts.push(`${progress.train_masks} masks to train on, ${progress.heldout_masks} held out`);
    return parts.join(" · ");
  }

  function detailCell(job) {
    const cell = el("td", null, "dash-job-detail");
    const lines = [];
    if (job.round) lines.push(roundText(job.round, job));
    if (job.detail) lines.push(job.detail);
    lines.filter(Boolean).forEach((line) => cell.append(el("div", line)));
    if (job.error) cell.append(el("div", job.error, "dash-job-error"));
    return cell;
  }

  function actionCell(job) {
    const cell = el("td");
    if (job.active) {
      const button = el("button", "Cancel", "button dash-cancel");
      button.type = "button";
      button.addEventListener("click", () => cancel(job, button));
      cell.append(button);
    } else if (job.download_url) {
      cell.append(dash.link(job.download_url, "download"));
    }
    return cell;
  }

  async function cancel(job, button) {
    const message = document.getElementById("jobs-message");
    button.disabled = true;
    message.className = "dash-message";
    message.textContent = `Cancelling ${KINDS[job.kind]} #${job.id}…`;
    try {
      const { response, body } = await dash.postJSON(job.cancel_url);
      if (!response.ok) {
        message.className = "dash-message error";
        message.textContent = `Could not cancel ${KINDS[job.kind]} #${job.id}: ${dash.errorText(body)}`;
        button.disabled = false;
        return;
      }
      message.textContent = `${KINDS[job.kind]} #${job.id} cancelled.`;
      await dash.refresh();
    } catch (error) {
      message.className = "dash-message error";
      message.textContent = `Could not reach the server: ${error.message}`;
      button.disabled = false;
    }
  }

  function drawJobs({ jobs }) {
    const table = document.getElementById("jobs-table");
    table.hidden = jobs.length === 0;
    document.querySelector('[data-card="jobs"] .dash-empty').hidden = jobs.length > 0;
    table.tBodies[0].replaceChildren(
      ...jobs.map((job) => {
        const title = el("th", null);
        title.append(el("span", `${KINDS[job.kind]} #${job.id}`, "dash-job-kind"), " ", job.title);
        const status = el("td");
        status.append(el("span", job.status, `dash-status ${job.status}`));
        const started = job.started_at || job.created_at;
        const tr = row([
          title,
          status,
          progressCell(job),
          detailCell(job),
          el("td", new Date(started).toLocaleString()),
          actionCell(job),
        ]);
        tr.dataset.job = `${job.kind}-${job.id}`;
        return tr;
      }),
    );
  }

  dash.renderers.push(drawJobs);
})();
