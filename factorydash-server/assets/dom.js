// factorydash: what the page scripts share (table cells, times and their ages, fragments
// the server rendered, the time zone), as window.factorydash; loaded first.
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

  // The time zone times are shown in: the plant's (the server's --time-zone, in
  // <meta name="factorydash-tz">), or this browser's when the viewer chose it (`tz=browser`
  // in the address, or remembered in this browser).
  const plantZone = document.querySelector('meta[name="factorydash-tz"]')?.content || "UTC";
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  function chosenZone() {
    const asked = new URLSearchParams(location.search).get("tz");
    let choice = asked;
    try {
      if (asked === "browser" || asked === "plant") localStorage.setItem("factorydash-tz", asked);
      else choice = localStorage.getItem("factorydash-tz");
    } catch (e) { /* not remembered */ }
    return choice === "browser" ? browserZone : plantZone;
  }
  let zone = chosenZone();
  let clockFormat, zoneName;
  function setZone(z) {
    try {
      clockFormat = new Intl.DateTimeFormat("en-CA", { timeZone: z, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    } catch (e) {
      z = "UTC";
      clockFormat = new Intl.DateTimeFormat("en-CA", { timeZone: z, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    }
    zone = z;
    zoneName = (ms) => new Intl.DateTimeFormat("en-GB", { timeZone: z, timeZoneName: "short" })
      .formatToParts(new Date(ms)).find((p) => p.type === "timeZoneName")?.value || z;
  }
  setZone(zone);

  // `ms` (since the epoch) as "2026-12-06 11:02:33" in the chosen zone; with `withZone`,
  // followed by the zone's short name ("CET", "GMT+1").
  function clock(ms, withZone) {
    const p = {};
    for (const part of clockFormat.formatToParts(new Date(ms))) p[part.type] = part.value;
    const text = p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second;
    return withZone ? text + " " + zoneName(ms) : text;
  }

  // A form's date and time ("2026-12-06T10:30" or with seconds, as a datetime-local input
  // gives it) read as a wall-clock time in the chosen zone: ms since the epoch, or NaN.
  // Around a daylight-saving change an hour that does not exist is taken after it, one
  // that comes twice the first time.
  function fromZoned(text) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(text || "");
    if (!m) return NaN;
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    const offset = (ms) => {
      const p = {};
      for (const part of clockFormat.formatToParts(new Date(ms))) p[part.type] = part.value;
      return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
    };
    let guess = wall - offset(wall);
    const second = wall - offset(guess);
    if (second !== guess) guess = Math.min(guess, second);
    return guess;
  }
  // `ms` as a datetime-local input's value in the chosen zone ("2026-12-06T10:30:00").
  function toZoned(ms) {
    return clock(ms, false).replace(" ", "T");
  }

  // Every <time data-ts> shows its clock time or its age, kept current.
  function age(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  // Each table cell labelled with its column's header: a phone shows rows as stacks of
  // labelled cells (app.css), so no column is lost.
  function labelCells() {
    for (const table of document.querySelectorAll("table")) {
      const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
      if (!heads.length) continue;
      for (const tr of table.querySelectorAll("tbody tr")) {
        [...tr.children].forEach((td, i) => { if (heads[i] && td.dataset.label !== heads[i]) td.dataset.label = heads[i]; });
      }
    }
  }

  function ages() {
    const now = Date.now();
    for (const t of document.querySelectorAll("time[data-ts]")) {
      const when = Date.parse(t.dataset.ts);
      if (Number.isNaN(when)) continue;
      t.title = t.dataset.ts;
      t.textContent = t.dataset.mode === "clock" ? clock(when, t.dataset.zone === "1") : age(now - when);
    }
    for (const card of document.querySelectorAll(".card")) {
      const t = card.querySelector('.newest time, dd.f-newest time');
      card.classList.toggle("stale", !!t && now - Date.parse(t.dataset.ts) > 5 * 60 * 1000);
    }
    const name = zoneName(now);
    for (const abbr of document.querySelectorAll(".tz-abbr")) abbr.textContent = " (" + name + ")";
    const clockEl = document.getElementById("clock");
    if (clockEl) clockEl.textContent = clock(now, true).slice(11);
    labelCells();
  }

  // The footer says which zone times are in, and switches between the plant's and this
  // browser's (remembered in this browser).
  function zoneNote() {
    const note = document.getElementById("tz-note");
    const button = document.getElementById("tz-switch");
    if (!note) return;
    const plant = zone === plantZone && chosenZone() === plantZone;
    note.textContent = "Times in " + zone + " (" + zoneName(Date.now()) + ")" +
      (plant ? ", the plant's time zone." : ", this browser's time zone.");
    if (!button) return;
    button.hidden = plantZone === browserZone;
    button.textContent = plant ? "use this browser's time zone (" + browserZone + ")" : "use the plant's time zone (" + plantZone + ")";
    button.onclick = () => {
      const next = plant ? "browser" : "plant";
      try { localStorage.setItem("factorydash-tz", next); } catch (e) { /* this page only */ }
      const q = new URLSearchParams(location.search);
      if (q.has("tz")) { q.set("tz", next); history.replaceState(null, "", "?" + q.toString() + location.hash); }
      setZone(next === "browser" ? browserZone : plantZone);
      zoneNote();
      ages();
      document.dispatchEvent(new Event("factorydash:zone"));
    };
  }

  zoneNote();
  ages();
  setInterval(ages, 1000);
  return { cell, setTime, ages, fragment, clock, fromZoned, toZoned, zone: () => zone, zoneName: (ms) => zoneName(ms), labelCells };
})();
