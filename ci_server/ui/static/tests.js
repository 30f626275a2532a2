// The test results of a job page, kept live. The rows are rendered by the server
// (`/ui/jobs/{id}/tests/rows`); this script only asks for a list's rows after the last one it
// has (`data-after`, a result's index) and appends them. It asks when the log's stream says a
// test of that list's outcomes finished (`ci:test`) or the job's status changed (`ci:status`,
// also once after every reconnect), one request per list at a time, one more after it if
// events came meanwhile. Results are numbered in the order reported and a list continues after
// its last index, so none is shown twice or skipped, whatever the events do.
//
// A list shows at most `data-page` rows per "Show more": a job with thousands of results stays
// light. The outcome filter fetches the section again in place (no reload: the log keeps
// streaming) and puts the filter in the address, so a link to it shows the same.
"use strict";
(function () {
  const root = document.getElementById("test-results");
  if (!root) return;
  const reported = Number(root.dataset.reported || "0");
  const lists = new Map();  // list element → { busy, again, cap }

  function stateOf(list) {
    let state = lists.get(list);
    if (!state) {
      state = { busy: false, again: false, cap: Number(list.dataset.page || "100") };
      lists.set(list, state);
    }
    return state;
  }
  const rowsOf = (list) => list.querySelectorAll("li[data-index]").length;
  const moreButton = (list) => root.querySelector(`button.show-more[data-for="${list.id}"]`);

  async function fetchRows(list, limit) {
    // Appends up to `limit` rows after the list's last; returns whether more follow.
    const url = `${list.dataset.rowsUrl}&after=${list.dataset.after}&limit=${limit}`;
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.redirected || response.status === 401) {
      window.location.assign("/ui/login");
      return false;
    }
    if (!response.ok) throw new Error(`${response.status}`);
    const more = response.headers.get("X-More-Results") === "true";
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    for (const row of Array.from(template.content.querySelectorAll("li[data-index]"))) {
      if (Number(row.dataset.index) <= Number(list.dataset.after)) continue;
      list.appendChild(row);
      list.dataset.after = row.dataset.index;
    }
    if (rowsOf(list) > 0) {
      list.closest("section").hidden = false;  // a group is shown once it has a row
      const none = document.getElementById("no-results");
      if (none) none.hidden = true;
    }
    return more;
  }

  async function follow(list) {
    const state = stateOf(list);
    if (state.busy) { state.again = true; return; }
    state.busy = true;
    try {
      do {
        state.again = false;
        const more = await fetchRows(list, Math.max(0, state.cap - rowsOf(list)));
        const button = moreButton(list);
        if (button) button.hidden = !more;
      } while (state.again && list.isConnected);
    } catch (error) {
      // Offline for a moment: the next event asks again.
    } finally {
      state.busy = false;
    }
  }

  function followAll(outcome) {
    for (const list of root.querySelectorAll("ol.results[data-rows-url]")) {
      if (outcome && !list.dataset.outcomes.split(" ").includes(outcome)) continue;
      follow(list);
    }
  }

  document.addEventListener("ci:test", (event) => {
    const detail = event.detail || {};
    if (detail.index !== undefined && detail.index <= reported) return;  // shown by the page already
    followAll(detail.outcome);
  });
  document.addEventListener("ci:status", () => followAll(null));
  // Whatever was reported between the page's rendering and now (an event may have come
  // before this script ran).
  if (root.querySelector('[data-running="true"]')) followAll(null);

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button.show-more");
    if (!button) return;
    const list = document.getElementById(button.dataset.for);
    if (!list) return;
    stateOf(list).cap = rowsOf(list) + Number(list.dataset.page || "100");
    button.hidden = true;
    follow(list);
  });

  root.addEventListener("submit", async (event) => {
    const form = event.target.closest("#tests-filter");
    if (!form) return;
    event.preventDefault();
    const outcome = form.elements.outcome.value;
    const query = `?outcome=${encodeURIComponent(outcome)}`;
    try {
      const response = await fetch(`${root.dataset.sectionUrl}${query}`, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (response.redirected || response.status === 401) {
        window.location.assign("/ui/login");
        return;
      }
      if (!response.ok) throw new Error(`${response.status}`);
      root.innerHTML = await response.text();
    } catch (error) {
      form.submit();  // the plain form: a page load with the filter
      return;
    }
    history.replaceState(null, "", `${window.location.pathname}${query}#tests`);
    const select = document.getElementById("outcome-filter");
    if (select) select.focus();
  });
})();
