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

// Live updates: the server's event stream says "look again"; the page fetches itself and
// swaps in the parts that change (the message list, its summary, the folder counts).
const LIVE_PARTS = ["table.messages tbody", "p.summary", "nav.folders", "nav.pager"];

async function refresh() {
  const reply = await fetch(location.href, { headers: { accept: "text/html" } });
  if (!reply.ok) return;
  const fresh = new DOMParser().parseFromString(await reply.text(), "text/html");
  for (const selector of LIVE_PARTS) {
    const now = document.querySelector(selector);
    const next = fresh.querySelector(selector);
    if (now && next) now.replaceWith(next);
  }
  const status = document.getElementById("live-status");
  if (status) status.textContent = "Mail list updated";
}

if (document.querySelector("table.messages") || document.querySelector("nav.folders")) {
  const events = new EventSource("/live");
  let pending = null;
  events.addEventListener("mail", () => {
    clearTimeout(pending);
    pending = setTimeout(refresh, 150); // a burst of deliveries: one refresh
  });
  events.addEventListener("signed-out", () => {
    events.close();
    location.assign("/signin");
  });
}
