// Every keyboard shortcut, in one table: the key handler and the help panel (?) both read it,
// so the help can never disagree with what the keys do.

const ctrl = (e) => e.ctrlKey || e.metaKey;
// Tab cycles candidates only where it would not move the keyboard focus between controls.
const onCanvas = (e) => e.target === document.body || e.target.id === "canvas";

export const SHORTCUTS = [
  { keys: "Enter", what: "accept the mask (save it)", match: (e) => e.key === "Enter", run: (a) => a.accept() },
  { keys: "Esc", what: "clear the current mask / dismiss Everything / close", match: (e) => e.key === "Escape", run: (a) => a.escape() },
  { keys: "left click", what: "add a + point (the mask grows there)" },
  { keys: "right click, Alt / Shift + click", what: "add a − point (remove that area)" },
  { keys: "drag", what: "draw a box around the object" },
  { keys: "C or Tab (on the image)", what: "cycle the candidate masks (whole / part / sub-part)", match: (e) => (e.key === "c" || (e.key === "Tab" && onCanvas(e))) && !ctrl(e), run: (a) => a.editor.cycle() },
  { keys: "1 2 3", what: "choose the whole, the part or the sub-part (candidates by size)", match: (e) => ["1", "2", "3"].includes(e.key) && !ctrl(e), run: (a, e) => a.editor.chooseRank(Number(e.key) - 1) },
  // Labels match the physical key (e.code): Shift+1 types "!" on one layout and "1" on another.
  // After 1 2 3, so that a layout whose digits need Shift keeps choosing candidates with them.
  { keys: "Shift+1 … Shift+9", what: "label 1 to 9 of the list for this mask and the next ones (with no mask in the making: for the selected saved masks)", match: (e) => e.shiftKey && !ctrl(e) && /^Digit[1-9]$/.test(e.code), run: (a, e) => a.pickLabel(Number(e.code.slice(5))) },
  { keys: "Shift+0", what: "no label (class-agnostic), likewise", match: (e) => e.shiftKey && !ctrl(e) && e.code === "Digit0", run: (a) => a.pickLabel(0) },
  { keys: "P", what: "points and box tool", match: (e) => e.key === "p" && !ctrl(e), run: (a) => a.setTool("prompt") },
  { keys: "B", what: "brush (right button erases)", match: (e) => e.key === "b" && !ctrl(e), run: (a) => a.setTool("brush") },
  { keys: "E", what: "eraser", match: (e) => e.key === "e" && !ctrl(e), run: (a) => a.setTool("eraser") },
  { keys: "[ ]", what: "smaller / larger brush", match: (e) => e.key === "[" || e.key === "]", run: (a, e) => a.resizeBrush(e.key === "]" ? 1.25 : 0.8) },
  { keys: "Ctrl+Z", what: "undo (with nothing left to undo on the mask: bring back the mask deleted last)", match: (e) => ctrl(e) && !e.shiftKey && e.key.toLowerCase() === "z", run: (a) => a.undo() },
  { keys: "Ctrl+Shift+Z or Ctrl+Y", what: "redo", match: (e) => ctrl(e) && ((e.shiftKey && e.key.toLowerCase() === "z") || e.key.toLowerCase() === "y"), run: (a) => a.redo() },
  { keys: "H", what: "hover preview on / off", match: (e) => e.key === "h" && !ctrl(e), run: (a) => a.toggleHover() },
  { keys: "A", what: "Everything: all the masks the model finds", match: (e) => e.key === "a" && !ctrl(e), run: (a) => a.everything() },
  { keys: "Shift+A", what: "accept every Everything proposal", match: (e) => e.key === "A" && !ctrl(e), run: (a) => a.acceptAllProposals() },
  { keys: "X", what: "cut-out of the selected masks (PNG)", match: (e) => e.key === "x" && !ctrl(e), run: (a) => a.cutout() },
  { keys: "M", what: "hide / show all saved masks", match: (e) => e.key === "m" && !ctrl(e), run: (a) => a.toggleAllMasks() },
  { keys: "Ctrl+click a mask, or click it in the list (Shift: several)", what: "select saved masks" },
  { keys: "R", what: "re-edit the selected mask (fix a pre-filled one)", match: (e) => e.key === "r" && !ctrl(e), run: (a) => a.editSelected() },
  { keys: "K", what: "keep the selected pre-filled masks", match: (e) => e.key === "k" && !ctrl(e), run: (a) => a.keepSelected() },
  { keys: "Delete", what: "delete the selected masks (Ctrl+Z within 10 s brings them back)", match: (e) => e.key === "Delete" || e.key === "Backspace", run: (a) => a.deleteSelected() },
  { keys: "N", what: "done with this image: next image", match: (e) => e.key === "n" && !ctrl(e), run: (a) => a.done() },
  { keys: "wheel, + −, 0", what: "zoom around the pointer, zoom in / out, fit the image", match: (e) => ["+", "=", "-", "0"].includes(e.key) && !ctrl(e), run: (a, e) => a.zoomKey(e.key) },
  { keys: "Space + drag, middle drag", what: "pan" },
  { keys: "?", what: "this help", match: (e) => e.key === "?", run: (a) => a.toggleHelp() },
];

function typing(event) {
  const tag = event.target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
}

export function installShortcuts(app) {
  window.addEventListener("keydown", (event) => {
    if (typing(event) || event.repeat && event.key === "Enter") return;
    const shortcut = SHORTCUTS.find((s) => s.match && s.match(event));
    if (!shortcut) return;
    // A dialog open: only its own keys (Esc closes it, ? toggles the help).
    if (app.dialogOpen() && !["Esc", "?"].includes(shortcut.keys)) return;
    event.preventDefault();
    shortcut.run(app, event);
  });
}

export function fillHelp(table) {
  const rows = SHORTCUTS.map((s) => {
    const tr = document.createElement("tr");
    const key = document.createElement("th");
    key.textContent = s.keys;
    const what = document.createElement("td");
    what.textContent = s.what;
    tr.append(key, what);
    return tr;
  });
  table.replaceChildren(...rows);
}
