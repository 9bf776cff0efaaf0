// factorydash: what the page scripts share (table cells, times and their ages, state
// labels), as window.factorydash; loaded first.
// Agent data is untrusted: only textContent is ever set.
"use strict";
window.factorydash = (function () {
  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function setTime(el, iso) {
    el.dataset.ts = iso;
    el.textContent = iso;
  }

  // A state's label: its JSON name with every "_" a space ("backing_off" → "backing off"),
  // the rule the server's page follows (SourceState::label, DeviceState as_str).
  function stateLabel(state) {
    return state.replaceAll("_", " ");
  }

  // Every <time data-ts> shows its clock time or its age, kept current.
  function age(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  function ages() {
    const now = Date.now();
    for (const t of document.querySelectorAll("time[data-ts]")) {
      const when = Date.parse(t.dataset.ts);
      if (Number.isNaN(when)) continue;
      t.title = t.dataset.ts;
      t.textContent = t.dataset.mode === "clock" ? new Date(when).toLocaleString() : age(now - when);
    }
    for (const card of document.querySelectorAll(".card")) {
      const t = card.querySelector('[data-field="newest"] time');
      card.classList.toggle("stale", !!t && now - Date.parse(t.dataset.ts) > 5 * 60 * 1000);
    }
  }

  ages();
  setInterval(ages, 1000);
  return { cell, setTime, stateLabel, ages };
})();
