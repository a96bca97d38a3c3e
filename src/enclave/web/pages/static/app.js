// What JavaScript adds to the pages (they work without it): keyboard shortcuts in a
// message list. An ES module served from the package; no inline script anywhere (the
// Content-Security-Policy forbids it).

const rows = () => [...document.querySelectorAll("table.messages tbody tr")];

function focusRow(step) {
  const all = rows();
  if (all.length === 0) return;
  const links = all.map((row) => row.querySelector("td.subject a"));
  const at = links.indexOf(document.activeElement);
  const next = Math.max(0, Math.min(all.length - 1, at + step));
  links[at === -1 ? 0 : next]?.focus();
}

document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "j") focusRow(1);
  if (event.key === "k") focusRow(-1);
});
