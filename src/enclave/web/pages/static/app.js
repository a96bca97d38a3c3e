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

// Uploads with a progress bar: each file goes to the documents API (streamed, any size);
// without JavaScript the form posts to the page instead.
for (const form of document.querySelectorAll("form.upload")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = [...form.querySelector("input[type=file]").files];
    const bar = form.querySelector("progress");
    const status = form.querySelector(".upload-status");
    const total = files.reduce((sum, file) => sum + file.size, 0) || 1;
    let done = 0;
    bar.hidden = false;
    for (const file of files) {
      const url = `${form.dataset.api.replace(/\/$/, "")}/${encodeURIComponent(file.name)}`;
      const ok = await new Promise((resolve) => {
        const request = new XMLHttpRequest();
        request.open("PUT", url);
        request.setRequestHeader("content-type", file.type || "application/octet-stream");
        request.upload.onprogress = (progress) => {
          bar.value = Math.round(((done + progress.loaded) / total) * 100);
        };
        request.onload = () => resolve(request.status < 300 ? true : request.responseText);
        request.onerror = () => resolve("the connection was lost");
        request.send(file);
      });
      if (ok !== true) {
        status.textContent = `${file.name}: ${ok}`;
        return;
      }
      done += file.size;
      bar.value = Math.round((done / total) * 100);
    }
    status.textContent = "Uploaded";
    location.reload();
  });
}
