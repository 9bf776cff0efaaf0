// factorydash: the alarms table, from /api/alarms.
// Agent data is untrusted: only textContent is ever set.
"use strict";
(function () {
  const { cell, ages } = window.factorydash;
  const deviceFilter = document.body.dataset.device || "";
  // Alarms: active first, then the last 24 hours' history; refreshed every 10 s and when
  // a Condition changes. New Faults raise a browser notification when asked for.
  const alarmRows = document.getElementById("alarm-rows");
  const notify = document.getElementById("notify");
  const seenFaults = new Set();
  let firstAlarms = true;
  function duration(seconds) {
    if (seconds < 60) return Math.round(seconds) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }
  async function loadAlarms() {
    if (!alarmRows) return;
    const q = new URLSearchParams();
    if (deviceFilter) q.set("device", deviceFilter);
    if (document.body.dataset.agent) q.set("agent", document.body.dataset.agent);
    const res = await fetch("/api/alarms?" + q.toString());
    if (!res.ok) {
      const failed = await res.json().catch(() => ({}));
      document.getElementById("alarm-count").textContent = "(" + (failed.error || res.statusText) + ")";
      return;
    }
    const body = await res.json();
    const episodes = body.episodes.slice().sort((a, b) =>
      (a.ended === null) === (b.ended === null) ? Date.parse(b.began) - Date.parse(a.began) : (a.ended === null ? -1 : 1));
    document.getElementById("alarm-count").textContent = "(" + body.active + " active, " + episodes.length + " in the last 24 h)";
    const badge = document.getElementById("alarm-badge");
    if (badge) { badge.textContent = body.active ? String(body.active) : ""; badge.title = body.active + " active"; }
    const trs = episodes.slice(0, 200).map((e) => {
      const tr = document.createElement("tr");
      tr.className = "alarm " + e.level.toLowerCase() + (e.ended === null ? " active" : "");
      const began = document.createElement("time");
      began.dataset.ts = e.began; began.dataset.mode = "clock"; began.textContent = e.began;
      const ended = document.createElement("time");
      if (e.ended) { ended.dataset.ts = e.ended; ended.dataset.mode = "clock"; ended.textContent = e.ended; } else ended.textContent = "active";
      const tdB = cell(""); tdB.append(began);
      const tdE = cell(""); tdE.append(ended);
      tr.append(cell(e.device), cell(e.level), cell(e.type), cell(e.nativeCode || ""), cell(e.message), tdB, tdE, cell(duration(e.durationSeconds)));
      const key = e.agent + "\u001f" + e.device + "\u001f" + e.dataItemId + "\u001f" + e.began;
      if (e.level === "Fault" && e.ended === null && !seenFaults.has(key)) {
        seenFaults.add(key);
        if (!firstAlarms && notify && notify.checked && window.Notification && Notification.permission === "granted") {
          new Notification("Fault on " + e.device, { body: (e.nativeCode ? "[" + e.nativeCode + "] " : "") + e.message });
        }
      }
      return tr;
    });
    if (!trs.length) {
      const tr = document.createElement("tr");
      const td = cell("No Warning or Fault in the last 24 hours.", "muted");
      td.colSpan = 8;
      tr.append(td);
      trs.push(tr);
    }
    alarmRows.replaceChildren(...trs);
    firstAlarms = false;
    ages();
  }
  if (notify) {
    notify.addEventListener("change", () => {
      if (notify.checked && window.Notification && Notification.permission === "default") Notification.requestPermission();
    });
  }
  let alarmsDue = false;
  document.addEventListener("factorydash:latest", (ev) => {
    if (ev.detail.items.some((o) => o.category === "CONDITION")) alarmsDue = true;
  });
  setInterval(() => { if (alarmsDue) { alarmsDue = false; loadAlarms(); } }, 2000);
  setInterval(loadAlarms, 10000);
  loadAlarms();
})();
