/* Starts an audit through the API (POST /api/datasets/{id}/audits/) and reloads the list; the
   API's validation answers bad input, and its message is shown as it is (textContent only). */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("audit-form");
    const message = document.getElementById("audit-message");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { sample_size: Number(form.sample_size.value), seed: Number(form.seed.value || 0) };
      if (form.source.value) body.source = form.source.value;
      if (form.model_version.value) body.model_version = Number(form.model_version.value);
      const token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
      const response = await fetch(form.dataset.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        message.className = "dash-message error";
        message.textContent = answer.detail || JSON.stringify(answer);
        return;
      }
      message.className = "dash-message";
      message.textContent = `Audit ${answer.id} started on ${answer.progress.sampled} images.`;
      location.reload();
    });
  });
})();
