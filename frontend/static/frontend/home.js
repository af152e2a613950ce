// The home page's line on today's work in this browser (kept by the annotation page).
const totals = JSON.parse(sessionStorage.getItem("sade-browser-session") || "null");
const box = document.getElementById("browser-summary");
if (totals && totals.masks) {
  const perMask = (totals.seconds / totals.masks).toFixed(1);
  box.textContent = `Today in this browser: ${totals.masks} masks on ${totals.images} images, ${perMask} s per mask.`;
  box.hidden = false;
}
