// The live log of a job page.
//
// It reads the job's SSE stream with fetch (not EventSource, which cannot send Last-Event-ID
// on a reconnect of our choosing nor stop reconnecting after `complete`): the first request
// replays from the beginning; after a dropped connection the next one sends the last event id
// seen, so the server resumes exactly after it. Chunks are also checked against the last seq
// shown, so none is ever shown twice. Output is rendered with its ANSI colours (SGR codes) as
// classes; other escape sequences are dropped. Text is appended once per animation frame, in
// blocks of complete lines (CSS content-visibility lets the browser skip off-screen blocks), so
// a 50,000-line log stays smooth. The view follows the end unless the user scrolls up; it
// follows again once they are back at the bottom (or press the "Follow" button).
"use strict";
(function () {
  const view = document.getElementById("log");
  if (!view) return;
  const state = document.getElementById("log-state");
  const followButton = document.getElementById("log-follow");
  const streamUrl = view.dataset.streamUrl;

  // ANSI SGR → classes. fg/bg hold a class name or an inline colour.
  const style = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
  const PALETTE256 = (n) => {
    if (n < 16) return null;
    if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
    const c = n - 16, r = Math.floor(c / 36), g = Math.floor(c / 6) % 6, b = c % 6;
    const s = (x) => (x === 0 ? 0 : 55 + x * 40);
    return `rgb(${s(r)},${s(g)},${s(b)})`;
  };
  function colour(codes, i, target) {
    // 38;5;n or 38;2;r;g;b (and 48;…): returns how many extra codes were used.
    if (codes[i + 1] === 5) {
      const n = codes[i + 2];
      style[target] = n < 16 ? `c${n}` : PALETTE256(n);
      return 2;
    }
    if (codes[i + 1] === 2) {
      style[target] = `rgb(${codes[i + 2] | 0},${codes[i + 3] | 0},${codes[i + 4] | 0})`;
      return 4;
    }
    return 0;
  }
  function applySgr(params) {
    const codes = params === "" ? [0] : params.split(";").map((p) => (p === "" ? 0 : Number(p)));
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) Object.assign(style, { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false });
      else if (c === 1) style.bold = true;
      else if (c === 2) style.dim = true;
      else if (c === 3) style.italic = true;
      else if (c === 4) style.underline = true;
      else if (c === 22) { style.bold = false; style.dim = false; }
      else if (c === 23) style.italic = false;
      else if (c === 24) style.underline = false;
      else if (c >= 30 && c <= 37) style.fg = `c${c - 30}`;
      else if (c >= 90 && c <= 97) style.fg = `c${c - 90 + 8}`;
      else if (c === 39) style.fg = null;
      else if (c >= 40 && c <= 47) style.bg = `c${c - 40}`;
      else if (c >= 100 && c <= 107) style.bg = `c${c - 100 + 8}`;
      else if (c === 49) style.bg = null;
      else if (c === 38) i += colour(codes, i, "fg");
      else if (c === 48) i += colour(codes, i, "bg");
    }
  }
  function styled(text, into) {
    if (!text) return;
    const plain = !style.fg && !style.bg && !style.bold && !style.dim && !style.italic && !style.underline;
    if (plain) { into.appendChild(document.createTextNode(text)); return; }
    const span = document.createElement("span");
    const classes = [];
    if (style.fg) { if (style.fg.startsWith("rgb")) span.style.color = style.fg; else classes.push(`fg-${style.fg}`); }
    if (style.bg) { if (style.bg.startsWith("rgb")) span.style.backgroundColor = style.bg; else classes.push(`bg-${style.bg}`); }
    if (style.bold) classes.push("b");
    if (style.dim) classes.push("dim");
    if (style.italic) classes.push("i");
    if (style.underline) classes.push("u");
    if (classes.length) span.className = classes.join(" ");
    span.textContent = text;
    into.appendChild(span);
  }
  // Escape sequences: CSI (ESC [ … final byte), OSC (ESC ] … BEL or ESC \), and lone ESC x.
  const ESCAPE = /\x1b(?:\[([0-9;?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;
  function render(text, into) {
    let at = 0;
    ESCAPE.lastIndex = 0;
    let match;
    while ((match = ESCAPE.exec(text)) !== null) {
      styled(text.slice(at, match.index), into);
      if (match[2] === "m") applySgr(match[1] || "");
      at = ESCAPE.lastIndex;
    }
    styled(text.slice(at), into);
  }

  // Text waiting for the next frame; `tail` is the last, unfinished line (and any escape
  // sequence cut in half), shown in its own element until its newline arrives.
  let pending = "";
  let tail = "";
  let scheduled = false;
  const tailNode = document.createElement("div");
  tailNode.className = "log-tail";
  view.appendChild(tailNode);
  let following = true;
  let lines = 0;

  function atBottom() {
    return view.scrollHeight - view.scrollTop - view.clientHeight < 24;
  }
  view.addEventListener("scroll", () => {
    following = atBottom();
    followButton.hidden = following;
  }, { passive: true });
  followButton.addEventListener("click", () => {
    following = true;
    followButton.hidden = true;
    view.scrollTop = view.scrollHeight;
    view.focus();
  });

  // At most this much text is rendered per frame, so a burst (a replay of a long log) is
  // spread over frames instead of freezing the page.
  const FRAME_BUDGET = 64 * 1024;

  function flush() {
    scheduled = false;
    let text = tail + pending;
    pending = "";
    if (text.length > FRAME_BUDGET) {
      const split = text.lastIndexOf("\n", FRAME_BUDGET) + 1;
      if (split > 0) {
        pending = text.slice(split);
        text = text.slice(0, split);
        scheduled = true;
        requestAnimationFrame(flush);
      }
    }
    let cut = text.lastIndexOf("\n") + 1;
    // Keep an escape sequence that has not ended yet with the tail.
    const esc = text.lastIndexOf("\x1b");
    if (esc >= cut && !/^\x1b(?:\[[0-9;?]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])/.test(text.slice(esc))) {
      cut = Math.min(cut, esc);
    }
    const complete = text.slice(0, cut);
    tail = text.slice(cut);
    const keepBottom = following;
    if (complete) {
      const block = document.createElement("div");
      block.className = "log-block";
      render(complete, block);
      lines += (complete.match(/\n/g) || []).length;
      view.insertBefore(block, tailNode);
    }
    // The unfinished line is drawn with the style it starts with, without keeping what it
    // would change: the same characters are rendered for good once the line completes.
    const saved = Object.assign({}, style);
    tailNode.textContent = "";
    render(tail.replace(/\x1b[^a-zA-Z]*$/, ""), tailNode);
    Object.assign(style, saved);
    view.dataset.lines = String(lines);
    if (keepBottom) view.scrollTop = view.scrollHeight;
  }
  function append(text) {
    pending += text;
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
  }
  function finish(then) {
    // Render what is still waiting, frame by frame, then close an unfinished last line.
    if (scheduled || pending) {
      requestAnimationFrame(() => finish(then));
      return;
    }
    if (tail) { pending = "\n"; flush(); }
    then();
  }

  let lastEventId = null;
  let lastSeq = 0;
  let retryDelay = 250;
  let reconnects = 0;
  function say(text) { if (state) state.textContent = text; }

  function handle(message) {
    if (message.id !== undefined) lastEventId = message.id;
    if (!message.data) return false;
    let event;
    try { event = JSON.parse(message.data); } catch (error) { return false; }
    if (event.type === "log") {
      if (event.seq <= lastSeq) return false;  // never twice
      lastSeq = event.seq;
      append(event.data);
    } else if (event.type === "status") {
      document.dispatchEvent(new CustomEvent("ci:refresh"));
      document.dispatchEvent(new CustomEvent("ci:status"));
    } else if (event.type === "test") {
      // A test finished: the counts and the results list (tests.js) fetch what is new.
      document.dispatchEvent(new CustomEvent("ci:test", { detail: { index: event.index, outcome: event.outcome } }));
    } else if (event.type === "complete") {
      return true;
    }
    return false;
  }

  async function follow() {
    const headers = { Accept: "text/event-stream" };
    if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
    let response;
    try {
      response = await fetch(streamUrl, { credentials: "same-origin", headers, cache: "no-store" });
    } catch (error) {
      return false;
    }
    if (response.status === 401) { window.location.assign("/ui/login"); return true; }
    if (!response.ok || !response.body) return false;
    say(reconnects ? "Following (reconnected)" : "Following");
    retryDelay = 250;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let message = {};
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return false;
        buffer += value;
        // One pass over the buffer per read (slicing it per line would copy it per line).
        let at = 0;
        const lineEnd = /\r\n|\r|\n/g;
        let found;
        while ((found = lineEnd.exec(buffer)) !== null) {
          const line = buffer.slice(at, found.index);
          at = lineEnd.lastIndex;
          if (line === "") {
            const ended = handle(message);
            message = {};
            if (ended) return true;
          } else if (line.charCodeAt(0) !== 58) {  // ":" starts a comment
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let data = colon < 0 ? "" : line.slice(colon + 1);
            if (data.charCodeAt(0) === 32) data = data.slice(1);
            if (field === "data") message.data = message.data === undefined ? data : message.data + "\n" + data;
            else if (field === "id") message.id = data;
            else if (field === "event") message.event = data;
          }
        }
        buffer = buffer.slice(at);
      }
    } catch (error) {
      return false;
    }
  }

  async function run() {
    for (;;) {
      const ended = await follow();
      if (ended) {
        finish(() => {
          say("Job finished");
          view.dataset.done = "true";
          document.dispatchEvent(new CustomEvent("ci:refresh"));
          document.dispatchEvent(new CustomEvent("ci:status"));
        });
        return;
      }
      reconnects += 1;
      view.dataset.reconnects = String(reconnects);
      say(`Connection lost; reconnecting in ${(retryDelay / 1000).toFixed(1)} s…`);
      await new Promise((resolve) => setTimeout(resolve, retryDelay));
      retryDelay = Math.min(retryDelay * 2, 5000);
    }
  }
  run();
})();
