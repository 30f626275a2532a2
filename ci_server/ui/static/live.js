// Live fragments: an element with data-refresh-url has its content replaced by that URL's HTML
// every data-refresh-every ms while the page is visible, and at once on the document events
// named in data-refresh-on (default `ci:refresh`, which the log script fires when the job's
// status changes; it fires `ci:status` then too, and `ci:test` per test result). An event that
// comes while a fetch is under way is answered by one more fetch after it, so the last one is
// never lost. With data-refresh-until-completed it stops once the fragment says the job has
// completed. Keyboard focus survives a refresh: the element that had it (found again by id)
// gets it back. Unchanged HTML is left alone.
"use strict";
(function () {
  const nodes = Array.from(document.querySelectorAll("[data-refresh-url]"));
  for (const node of nodes) {
    let last = node.innerHTML;
    let busy = false;
    let again = false;
    let stopped = false;
    const every = Number(node.dataset.refreshEvery || "2000");
    const completed = () => node.querySelector('[data-status="completed"]') !== null;
    if (node.hasAttribute("data-refresh-until-completed") && completed()) stopped = true;

    async function refresh() {
      if (busy) { again = true; return; }
      if (stopped) return;
      busy = true;
      try {
        const response = await fetch(node.dataset.refreshUrl, {
          credentials: "same-origin",
          headers: { Accept: "text/html" },
        });
        if (response.redirected || response.status === 401) {
          window.location.assign("/ui/login");
          return;
        }
        if (!response.ok) return;
        const html = await response.text();
        if (html === last) return;
        const focusedId = node.contains(document.activeElement) ? document.activeElement.id : "";
        node.innerHTML = html;
        last = node.innerHTML;
        if (focusedId) {
          const focused = document.getElementById(focusedId);
          if (focused) focused.focus();
        }
        if (node.hasAttribute("data-refresh-until-completed") && completed()) stopped = true;
      } catch (error) {
        // Offline for a moment: the next tick tries again.
      } finally {
        busy = false;
        if (again) { again = false; refresh(); }
      }
    }

    setInterval(() => {
      if (document.visibilityState === "visible") refresh();
    }, every);
    for (const name of (node.dataset.refreshOn || "ci:refresh").split(/\s+/)) {
      document.addEventListener(name, () => {
        stopped = false;
        refresh();
      });
    }
  }
})();
