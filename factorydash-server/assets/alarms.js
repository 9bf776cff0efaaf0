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
  // Browsers allow notifications only on secure origins (HTTPS, or localhost): say so
  // rather than offer a switch that does nothing.
  if (notify && !window.isSecureContext) {
    notify.disabled = true;
    const note = document.getElementById("notify-insecure");
    if (note) note.hidden = false;
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
  document.addEventListener("factorydash:board", (ev) => { if (ev.detail.conditions) alarmsDue = true; });
  setInterval(() => { if (alarmsDue) { alarmsDue = false; loadAlarms(); } }, 2000);
  setInterval(loadAlarms, 10000);
  loadAlarms();
})();

// The alarm rules' alarms (/api/alarms/active): the banner of the newest active
// unacknowledged one (highest priority first), the list to handle with the operator's
// buttons, and a sound on a new one when this browser asked for it (kept in
// localStorage). Agent data is untrusted: only textContent is ever set.
(function () {
  const { cell, ages } = window.factorydash;
  const banner = document.getElementById("alarm-banner");
  const list = document.getElementById("alarm-list");
  const rows = document.getElementById("alarm-list-rows");
  const sound = document.getElementById("alarm-sound");
  if (!banner && !list) return;
  const RANK = { urgent: 0, high: 1, medium: 2, low: 3 };
  const heard = new Set();
  let first = true;
  if (sound) {
    sound.checked = localStorage.getItem("factorydash-alarm-sound") === "1";
    sound.addEventListener("change", () => {
      localStorage.setItem("factorydash-alarm-sound", sound.checked ? "1" : "0");
      if (sound.checked) beep();
    });
  }
  let audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      // A context made without a click starts suspended (autoplay rules): resumed here,
      // and at the first click anywhere on the page below.
      if (audio.state === "suspended") audio.resume();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.6);
    } catch (_) { /* no audio here */ }
  }
  async function act(id, what, body, out) {
    const res = await fetch("/api/alarms/" + id + "/" + what, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!res.ok) {
      const failed = await res.json().catch(() => ({}));
      if (out) out.textContent = failed.error || res.statusText;
      return;
    }
    if (out) out.textContent = "";
    load();
  }
  function shelve(id, out) {
    const reason = window.prompt("Shelve this alarm for an hour: why?");
    if (reason && reason.trim()) act(id, "shelve", { comment: reason.trim(), minutes: 60 }, out);
  }
  const STATES = {
    "unacknowledged": "active, unacknowledged", "acknowledged": "active, acknowledged",
    "cleared-unacknowledged": "cleared, unacknowledged", "ended": "ended",
  };
  let shown = null;
  function render(alarms) {
    const open = alarms.filter((a) => !a.shelved && (a.state === "unacknowledged"));
    open.sort((a, b) => (RANK[a.priority] - RANK[b.priority]) || Date.parse(b.lastRaisedAt) - Date.parse(a.lastRaisedAt));
    if (banner) {
      const top = open[0];
      banner.hidden = !top;
      if (top) {
        shown = top.id;
        banner.className = top.priority;
        banner.querySelector(".priority").textContent = top.priority;
        banner.querySelector(".message").textContent = top.message + (top.count > 1 ? " (×" + top.count + (top.chattering ? ", chattering" : "") + ")" : "");
        // A viewer sees the alarm, not buttons that would be refused.
        banner.querySelector(".ack").hidden = !top.canAct;
        banner.querySelector(".shelve").hidden = !top.canAct;
        banner.querySelector(".more").textContent = open.length > 1 ? "and " + (open.length - 1) + " more unacknowledged" : "";
      }
    }
    // A sound for a new alarm (not for each return of a chattering one).
    for (const a of open) {
      if (!heard.has(a.id)) {
        heard.add(a.id);
        if (!first && sound && sound.checked) beep();
      }
    }
    if (heard.size > 10000) heard.clear();
    first = false;
    if (!list || !rows) return;
    list.hidden = alarms.length === 0;
    document.getElementById("alarm-list-count").textContent = "(" + alarms.length + ")";
    rows.replaceChildren(...alarms.map((a) => {
      const tr = document.createElement("tr");
      tr.className = a.priority + " " + a.state;
      const raised = document.createElement("time");
      raised.dataset.ts = a.raisedAt; raised.dataset.mode = "clock"; raised.textContent = a.raisedAt;
      const tdR = cell(""); tdR.append(raised);
      let state = STATES[a.state] || a.state;
      if (a.shelved) state += ", shelved: " + a.shelved.comment;
      if (a.chattering) state += ", chattering";
      const tdA = cell("");
      const out = document.createElement("span");
      out.className = "muted";
      if (a.canAct && (a.state === "unacknowledged" || a.state === "cleared-unacknowledged")) {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = "Acknowledge";
        b.addEventListener("click", () => act(a.id, "acknowledge", {}, out));
        tdA.append(b);
      }
      if (a.canAct) {
        const s = document.createElement("button");
        s.type = "button";
        s.textContent = a.shelved ? "Unshelve" : "Shelve 1 h";
        s.addEventListener("click", () => (a.shelved ? act(a.id, "unshelve", {}, out) : shelve(a.id, out)));
        tdA.append(s);
      }
      tdA.append(out);
      tr.append(cell(a.priority), cell(a.device), cell(a.message), tdR, cell(String(a.count)), cell(state), tdA);
      return tr;
    }));
    ages();
  }
  async function load() {
    const res = await fetch("/api/alarms/active");
    if (!res.ok) return;
    const body = await res.json();
    render(body.alarms);
  }
  if (banner) {
    const out = banner.querySelector(".result");
    banner.querySelector(".ack").addEventListener("click", () => { if (shown) act(shown, "acknowledge", {}, out); });
    banner.querySelector(".shelve").addEventListener("click", () => { if (shown) shelve(shown, out); });
  }
  document.addEventListener("click", () => { if (audio && audio.state === "suspended") audio.resume(); });
  let due = false;
  document.addEventListener("factorydash:latest", (ev) => {
    if (ev.detail.items.some((o) => o.category !== "SAMPLE")) due = true;
  });
  document.addEventListener("factorydash:board", (ev) => { if (ev.detail.events) due = true; });
  setInterval(() => { if (due) { due = false; load(); } }, 2000);
  setInterval(load, 10000);
  load();
})();
