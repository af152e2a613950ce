/* The dataset's label set on the dashboard: add, rename, recolour, reorder and delete labels,
   through the API (GET/POST /api/datasets/{id}/labels/, PATCH/DELETE .../labels/{label_id}/),
   whose validation answers bad input and whose permission checks decide. Deleting a label keeps
   its masks, unlabelled; the confirmation says how many. The masks per label come from the
   dataset's stats when they count them (stats.labels). Text goes in with textContent only. */
(function () {
  "use strict";

  const dash = window.sadeDash;
  const { page, el, sendJSON: send } = dash;
  let labels = page.labels;
  let counts = new Map(); // label id -> masks, from the stats

  function say(text, isError) {
    const message = document.getElementById("label-message");
    message.className = isError ? "dash-message error" : "dash-message";
    message.textContent = text;
  }

  function refusal(body) {
    return body && typeof body.detail === "string" ? body.detail : dash.errorText(body);
  }

  function input(type, name, value, attrs) {
    const node = document.createElement("input");
    node.type = type;
    node.name = name;
    node.value = value;
    Object.entries(attrs || {}).forEach(([key, v]) => node.setAttribute(key, v));
    return node;
  }

  function button(text, act, className) {
    const node = el("button", text, className || "button");
    node.type = "button";
    node.dataset.act = act;
    return node;
  }

  function cell(...children) {
    const td = document.createElement("td");
    td.append(...children);
    return td;
  }

  function draw() {
    const card = document.querySelector('[data-card="labels"]');
    const table = document.getElementById("label-table");
    card.querySelector(".dash-empty").hidden = labels.length > 0;
    table.hidden = labels.length === 0;
    table.tBodies[0].replaceChildren(
      ...labels.map((label) => {
        const tr = dash.row([
          cell(input("number", "position", label.position, { min: 0, max: 2147483647, "aria-label": `position of ${label.name}` })),
          cell(input("color", "color", label.color, { "aria-label": `colour of ${label.name}` })),
          cell(input("text", "name", label.name, { maxlength: 100, "aria-label": `name of ${label.name}` })),
          counts.has(label.id) ? el("td", counts.get(label.id).toLocaleString("en-US"), "num") : el("td", "–", "num quiet"),
          cell(button("Save", "save", "button default"), " ", button("Delete", "delete")),
        ]);
        tr.dataset.labelId = label.id;
        return tr;
      }),
    );
  }

  async function load() {
    const { response, body } = await send("GET", page.urls.labels);
    if (!response.ok) throw new Error(refusal(body));
    labels = body;
    draw();
  }

  async function act(request, done) {
    try {
      const { response, body } = await request();
      if (!response.ok) {
        say(`Refused: ${refusal(body)}`, true);
        return;
      }
      await load();
      say(done(body));
    } catch (error) {
      say(`Could not reach the server: ${error.message}`, true);
    }
  }

  function add(event) {
    event.preventDefault();
    const form = event.target;
    const request = { name: form.elements.name.value, color: form.elements.color.value };
    act(
      () => send("POST", page.urls.labels, request),
      (label) => {
        form.elements.name.value = "";
        return `Label "${label.name}" added (Shift+${labels.length + 1 <= 9 ? labels.length + 1 : "…"} on the annotation page).`;
      },
    );
  }

  function tableClick(event) {
    const target = event.target.closest("button[data-act]");
    if (!target) return;
    const tr = target.closest("tr[data-label-id]");
    const label = labels.find((l) => String(l.id) === tr.dataset.labelId);
    const url = `${page.urls.labels}${label.id}/`;
    if (target.dataset.act === "save") {
      const field = (name) => tr.querySelector(`input[name=${name}]`).value;
      const position = field("position");
      const changes = { name: field("name"), color: field("color") };
      if (position !== "") changes.position = Number(position);
      act(() => send("PATCH", url, changes), (saved) => `Label "${saved.name}" saved.`);
      return;
    }
    const masks = counts.has(label.id) ? `its ${counts.get(label.id)} masks` : "its masks";
    if (!window.confirm(`Delete the label "${label.name}"? ${masks} stay, without a label.`)) return;
    act(
      () => send("DELETE", url),
      (answer) => {
        dash.refresh();
        return `Label "${label.name}" deleted; ${answer.unlabelled_masks} masks have no label now.`;
      },
    );
  }

  dash.renderers.push(({ stats }) => {
    if (!Array.isArray(stats.labels)) return;
    counts = new Map(stats.labels.map((l) => [l.id, l.masks]));
    draw();
  });
  document.getElementById("label-form").addEventListener("submit", add);
  document.getElementById("label-table").addEventListener("click", tableClick);
  draw();
})();
