// The artifacts list of a job page, where the server has `GET /jobs/{id}/artifacts`: loaded
// when the page opens and again when the job's status changes (`ci:status`). Accepts a list,
// or an object with an `artifacts` list, of paths or of objects with `path` (or `name`) and an
// optional `size` in bytes. Links download through `GET /jobs/{id}/artifacts/{path}`.
"use strict";
(function () {
  const section = document.getElementById("artifacts");
  if (!section) return;
  const list = document.getElementById("artifact-list");
  const url = section.dataset.artifactsUrl;

  function size(bytes) {
    if (typeof bytes !== "number") return "";
    const units = ["B", "KiB", "MiB", "GiB"];
    let n = bytes, unit = 0;
    while (n >= 1024 && unit < units.length - 1) { n /= 1024; unit += 1; }
    return ` (${unit ? n.toFixed(1) : n} ${units[unit]})`;
  }

  async function load() {
    let body;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) { section.hidden = true; return; }
      body = await response.json();
    } catch (error) {
      return;
    }
    const items = Array.isArray(body) ? body : (body && Array.isArray(body.artifacts) ? body.artifacts : []);
    list.textContent = "";
    if (!items.length) {
      const empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "No artifacts.";
      list.appendChild(empty);
      return;
    }
    for (const item of items) {
      const path = typeof item === "string" ? item : (item.path || item.name || "");
      if (!path) continue;
      const entry = document.createElement("li");
      const link = document.createElement("a");
      link.href = `${url}/${path.split("/").map(encodeURIComponent).join("/")}`;
      link.textContent = path;
      link.setAttribute("download", "");
      entry.appendChild(link);
      entry.appendChild(document.createTextNode(size(typeof item === "string" ? undefined : item.size)));
      list.appendChild(entry);
    }
  }
  load();
  document.addEventListener("ci:status", load);
})();
