// factorydash: what the page scripts share (table cells, times and their ages, fragments
// the server rendered), as window.factorydash; loaded first.
// Agent data is untrusted: only textContent is ever set, or markup the server rendered
// (escaped there) is placed.
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

  // One element from HTML the server's renderer made (src/page.rs), parsed inertly (no
  // script runs) and adopted into this document.
  function fragment(html) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    return document.adoptNode(doc.body.firstElementChild);
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
      const t = card.querySelector('.newest time');
      card.classList.toggle("stale", !!t && now - Date.parse(t.dataset.ts) > 5 * 60 * 1000);
    }
  }

  ages();
  setInterval(ages, 1000);
  return { cell, setTime, ages, fragment };
})();
