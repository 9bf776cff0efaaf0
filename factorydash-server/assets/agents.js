// factorydash: the agents page (/agents). For an admin, its buttons and form call the
// JSON API (/api/agents) as any script of this server's own pages does: same-origin
// fetch, so the browser sends its token cookie and the proof of origin the CSRF guard
// asks for (Sec-Fetch-Site, Origin), and a body only as application/json. The API checks
// everything; this script checks nothing of its own.
// After a change, and when the sources' health changes live, it reads the page again
// and places the parts of each card the server rendered (src/agents_page.rs). It builds
// no markup: agent data reaches the page only through the server's escaping renderer or
// textContent.
"use strict";
(function () {
  const { ages } = window.factorydash;
  const list = document.getElementById("agent-list");
  if (!list) return;
  const pageMessage = document.getElementById("agents-message");

  function say(el, text, failed) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("failed", !!failed);
  }

  // The part of `card` named `name` (data-part).
  const part = (card, name) => card.querySelector(':scope > [data-part="' + CSS.escape(name) + '"]');

  // Places the cards of a fresh copy of the page: a card's parts that changed are
  // replaced (so a button is left alone unless what it does changed), new cards are
  // inserted, cards no longer there are removed, in the fresh order.
  function place(page) {
    const fresh = page.getElementById("agent-list");
    if (!fresh) return;
    const shown = new Map();
    for (const card of list.querySelectorAll(":scope > article[data-agent]")) shown.set(card.dataset.agent, card);
    const order = [];
    for (const card of [...fresh.querySelectorAll(":scope > article[data-agent]")]) {
      const old = shown.get(card.dataset.agent);
      if (!old) { order.push(document.adoptNode(card)); continue; }
      shown.delete(card.dataset.agent);
      old.className = card.className;
      const parts = [...card.querySelectorAll(":scope > [data-part]")];
      const names = new Set(parts.map((p) => p.dataset.part));
      for (const p of [...old.querySelectorAll(":scope > [data-part]")]) if (!names.has(p.dataset.part)) p.remove();
      let prev = null;
      for (const p of parts) {
        const was = part(old, p.dataset.part);
        let now = was;
        if (!was) {
          now = document.adoptNode(p);
          old.insertBefore(now, prev ? prev.nextSibling : old.firstChild);
        } else if (was.outerHTML !== p.outerHTML) {
          now = document.adoptNode(p);
          was.replaceWith(now);
        }
        prev = now;
      }
      order.push(old);
    }
    for (const gone of shown.values()) gone.remove();
    let prev = null;
    for (const card of order) {
      const at = prev ? prev.nextElementSibling : list.firstElementChild;
      if (at !== card) list.insertBefore(card, at);
      prev = card;
    }
    for (const id of ["agents-summary", "no-agents"]) {
      const now = document.getElementById(id);
      const then = page.getElementById(id);
      if (now && then) now.replaceWith(document.adoptNode(then));
    }
    ages();
  }

  // Reads this page again. `strict`: a failure is thrown (after a change); otherwise
  // (live) it is left for the next health change.
  let reading = null;
  async function refresh(strict) {
    if (reading) await reading.catch(() => {});
    reading = (async () => {
      const res = await fetch(location.pathname, { headers: { Accept: "text/html" } });
      if (!res.ok) throw new Error("cannot read the page again: " + res.status + " " + res.statusText);
      place(new DOMParser().parseFromString(await res.text(), "text/html"));
    })();
    try { await reading; } catch (e) { if (strict) throw e; } finally { reading = null; }
  }

  // Live: the sources' health changed (within a second when a state changes, every 10 s
  // when only counters move); read again at most every 2 s, never while a change is under
  // way.
  let busy = 0;
  let due = false;
  document.addEventListener("factorydash:health", () => { due = true; });
  setInterval(() => {
    if (due && !busy && !reading) { due = false; refresh(false); }
  }, 2000);

  // One call of the JSON API: its answer, or an Error with the API's own message.
  async function call(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let answer = null;
    try { answer = text ? JSON.parse(text) : null; } catch (e) { answer = null; }
    if (!res.ok) {
      const why = answer && typeof answer.error === "string" ? answer.error : res.status + " " + res.statusText;
      throw new Error(why);
    }
    return { status: res.status, answer };
  }

  // Runs `change` with the page marked busy and `button` disabled; says how it went in
  // `where`; then reads the page again.
  async function changing(button, where, pendingText, change) {
    busy++;
    if (button) button.disabled = true;
    say(where, pendingText, false);
    try {
      const done = await change();
      say(where, done, false);
      try { await refresh(true); } catch (e) { say(where, done + " " + e.message, true); }
    } catch (e) {
      say(where, e.message, true);
    } finally {
      busy--;
      if (button && button.isConnected) button.disabled = false;
    }
  }

  list.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button || !list.contains(button)) return;
    // Each button is a form of its own for a browser without scripts; here the JSON
    // API is called instead, and the page is not left.
    ev.preventDefault();
    const card = button.closest("article[data-agent]");
    const url = card.dataset.agent;
    const message = card.querySelector(".message");
    const q = "?url=" + encodeURIComponent(url);
    const action = button.dataset.action;
    if (action === "pause") {
      changing(button, message, "Pausing…", async () => {
        await call("POST", "/api/agents/pause" + q);
        return "Paused: not followed, after restarts too, until resumed.";
      });
    } else if (action === "resume") {
      changing(button, message, "Resuming…", async () => {
        await call("POST", "/api/agents/resume" + q);
        return "Resumed: followed again from where it stopped.";
      });
    } else if (action === "remove") {
      const sure = window.confirm("Remove the agent " + url + "?\n\nIt will no longer be followed, after restarts too. What was stored from it stays.");
      if (!sure) return;
      // The card goes away: the outcome is told over the list.
      changing(button, pageMessage, "Removing " + url + "…", async () => {
        await call("DELETE", "/api/agents" + q);
        return "Removed " + url + ".";
      });
    }
  });

  const form = document.getElementById("add-form");
  if (form) {
    const input = document.getElementById("add-url");
    const message = document.getElementById("add-message");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const url = input.value.trim();
      changing(form.querySelector("button[type=submit]"), message, "Adding…", async () => {
        const { status, answer } = await call("POST", "/api/agents", { url });
        input.value = "";
        const shown = answer && answer.url ? answer.url : url;
        return (status === 201 ? "Added " + shown + ": followed from now on." : shown + " is followed already.");
      });
    });
  }
})();
