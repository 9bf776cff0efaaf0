// factorydash live updates. Agent data is untrusted: only textContent is ever set.
"use strict";
(function () {
  const body = document.body;
  const limit = Number(body.dataset.limit || 50);
  const deviceFilter = body.dataset.device || "";
  const rows = new Map();
  const key = (device, item) => device + "\u001f" + item;

  // "As of": the browser's local date and time in the form, UTC in the address (`at`).
  const atLocal = document.getElementById("at-local");
  const atField = document.getElementById("at");
  if (atLocal && atField) {
    const pad = (n) => String(n).padStart(2, "0");
    if (atField.value) {
      const d = new Date(atField.value);
      atLocal.value = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
        "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    }
    atLocal.form.addEventListener("submit", () => {
      // A local date and time without a zone is read as the browser's own.
      atField.value = atLocal.value ? new Date(atLocal.value).toISOString() : "";
      atField.disabled = !atField.value;
    });
  }

  // The theme switch: the system's → dark → light → the system's (theme.js applied the
  // stored choice before the page was drawn).
  const themeButton = document.getElementById("theme");
  if (themeButton) {
    const root = document.documentElement;
    const show = () => { themeButton.textContent = "theme: " + (root.dataset.theme || "system"); };
    themeButton.addEventListener("click", () => {
      const next = { "": "dark", dark: "light", light: "" }[root.dataset.theme || ""];
      if (next) root.dataset.theme = next; else delete root.dataset.theme;
      try {
        if (next) localStorage.setItem("factorydash-theme", next);
        else localStorage.removeItem("factorydash-theme");
      } catch (e) { /* not remembered */ }
      show();
      document.dispatchEvent(new Event("factorydash:theme"));
    });
    show();
  }

  function indexRows() {
    rows.clear();
    for (const tr of document.querySelectorAll("tr[data-item]")) rows.set(key(tr.dataset.device, tr.dataset.item), tr);
  }

  function valueText(o) {
    const text = o.value === null ? (o.condition ? "" : "UNAVAILABLE") : o.value;
    if (o.condition) return o.condition.level + (text ? ": " + text : "");
    return text;
  }

  function setTime(el, iso) {
    el.dataset.ts = iso;
    el.textContent = iso;
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function buildRow(r) {
    const tr = document.createElement("tr");
    tr.dataset.device = r.device;
    tr.dataset.item = r.data_item_id;
    tr.append(cell(r.device), cell(r.component || r.component_id),
      cell(r.data_item_id + (r.name ? " (" + r.name + ")" : "")),
      cell(r.kind + (r.sub_type ? " " + r.sub_type : "")),
      cell(valueText(r), "value" + (r.value === null ? " unavailable" : "")),
      cell(r.units || ""));
    const td = cell("", "ts");
    const t = document.createElement("time");
    t.dataset.mode = "clock";
    setTime(t, r.timestamp);
    td.append(t);
    tr.append(td);
    return tr;
  }

  // The first page grows as new data items appear: refetch it (at most once a second).
  let refetching = false;
  async function refetchPage() {
    if (refetching || !document.getElementById("rows")) return;
    refetching = true;
    try {
      // The page's own filters (device, component, category, type, q), first page.
      const q = new URLSearchParams(location.search);
      q.delete("cursor");
      q.set("limit", String(limit));
      const res = await fetch("/api/latest?" + q.toString());
      if (res.ok) {
        const page = await res.json();
        const tbody = document.getElementById("rows");
        tbody.replaceChildren(...page.items.map(buildRow));
        const empty = document.getElementById("empty");
        if (empty && page.items.length) empty.remove();
        indexRows();
        ages();
      }
    } finally {
      setTimeout(() => { refetching = false; }, 1000);
    }
  }

  function applyLatest(items) {
    // A table of a past instant (`?at=`) keeps its values.
    if (body.dataset.at) return;
    let missing = false;
    for (const o of items) {
      if (deviceFilter && o.device !== deviceFilter) continue;
      const tr = rows.get(key(o.device, o.data_item_id));
      if (!tr) { missing = true; continue; }
      const v = tr.querySelector("td.value");
      v.textContent = valueText(o);
      v.classList.toggle("unavailable", o.value === null);
      setTime(tr.querySelector("time"), o.timestamp);
      tr.classList.remove("changed");
      void tr.offsetWidth;
      tr.classList.add("changed");
    }
    if (missing && body.dataset.firstPage === "1" && rows.size < limit) refetchPage();
  }

  function text(v) { return v === undefined ? "—" : (v === null ? "UNAVAILABLE" : v); }

  function applyDevices(statuses) {
    for (const s of statuses) {
      const card = document.querySelector('.card[data-device="' + CSS.escape(s.device) + '"]');
      if (!card) continue;
      for (const f of ["availability", "execution", "controller_mode", "emergency_stop", "program", "part_count"]) {
        const el = card.querySelector('[data-field="' + f + '"]');
        if (el) el.textContent = s[f] === undefined || (s[f] === null && s.observed_items === 0) ? "—" : text(s[f]);
      }
      const newest = card.querySelector('[data-field="newest"]');
      if (newest && s.newest) {
        const t = document.createElement("time");
        setTime(t, s.newest);
        newest.replaceChildren(t);
      }
      const list = card.querySelector('[data-field="conditions"]');
      const lis = s.active_conditions.map((c) => {
        const li = document.createElement("li");
        li.className = c.level.toLowerCase();
        li.textContent = c.level + " " + c.kind + (c.native_code ? " [" + c.native_code + "]" : "") + (c.message ? ": " + c.message : "");
        return li;
      });
      if (!lis.length) {
        const li = document.createElement("li");
        li.className = "none";
        li.textContent = "No active conditions";
        lis.push(li);
      }
      list.replaceChildren(...lis);
      const cls = s.state;
      const state = card.querySelector('[data-field="state"]');
      if (state) state.textContent = cls.replace("_", " ");
      card.classList.remove("running", "idle", "stopped", "faulted", "unavailable", "no_data");
      card.classList.add(cls);
    }
  }

  function applyHealth(sources) {
    const banner = document.getElementById("banner");
    const alerts = sources.filter((s) => s.unreachable_since).map((s) => {
      const p = document.createElement("p");
      p.className = "alert";
      const retry = s.retry_at ? " Retrying at " + new Date(s.retry_at).toLocaleTimeString() : " Retrying";
      p.textContent = "Cannot reach " + s.source + " since " + new Date(s.unreachable_since).toLocaleString() +
        (s.last_error ? " (" + s.last_error + ")" : "") + "." + retry + "; showing the last data received.";
      return p;
    });
    for (const s of sources.filter((s) => s.store_unavailable_since)) {
      const p = document.createElement("p");
      p.className = "alert";
      p.textContent = "Cannot store what " + s.source + " sends since " +
        new Date(s.store_unavailable_since).toLocaleString() +
        (s.store_error ? " (" + s.store_error + ")" : "") + ". " + s.buffered +
        " observations are waiting; retrying.";
      alerts.unshift(p);
    }
    banner.replaceChildren(...alerts);
    const list = document.getElementById("sources");
    if (!list) return;
    list.replaceChildren(...sources.map((s) => {
      const span = document.createElement("span");
      span.className = "source";
      span.dataset.source = s.source;
      let text = s.source + ": " + s.state.replace("_", " ") + " · " + s.observations.toLocaleString() + " observations";
      if (s.observations_per_second >= 0.1) text += " · " + s.observations_per_second.toFixed(1) + "/s";
      if (s.gaps) text += " · " + s.gaps + " gap" + (s.gaps > 1 ? "s" : "") + " (observations the agent lost)";
      if (s.restarts) text += " · agent restarted " + s.restarts + "×";
      span.textContent = text;
      return span;
    }));
  }

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

  // The live protocol: after a reconnect, ask for what was missed (since=epoch.id); the
  // server sends it, or "resync" when it no longer holds it. Only this page's devices are
  // subscribed to. A silent server (no heartbeat for 40 s) is reconnected to.
  let delay = 500;
  let epoch = null;
  let lastId = 0;
  let watchdog = null;
  async function resync() {
    refetchPage();
    const res = await fetch("/api/devices");
    if (res.ok) applyDevices((await res.json()).map((d) => d.status));
    document.dispatchEvent(new CustomEvent("factorydash:resync"));
  }
  function connect() {
    const live = document.getElementById("live");
    const since = epoch === null ? "" : "?since=" + epoch + "." + lastId;
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + since);
    const alive = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => ws.close(), 40000);
    };
    ws.onopen = () => {
      delay = 500;
      live.textContent = "live";
      alive();
      ws.send(JSON.stringify({ type: "subscribe", devices: deviceFilter ? [deviceFilter] : null }));
    };
    ws.onmessage = (ev) => {
      alive();
      const msg = JSON.parse(ev.data);
      if (msg.type === "hello") {
        if (epoch !== null && msg.epoch !== epoch) { lastId = msg.id; }
        epoch = msg.epoch;
        if (lastId === 0) lastId = msg.id;
        return;
      }
      if (typeof msg.id === "number") lastId = msg.id;
      if (msg.type === "latest") {
        applyLatest(msg.items); applyDevices(msg.devices); ages();
        document.dispatchEvent(new CustomEvent("factorydash:latest", { detail: msg }));
      }
      else if (msg.type === "health") applyHealth(msg.sources);
      else if (msg.type === "resync") resync();
    };
    ws.onclose = () => {
      clearTimeout(watchdog);
      live.textContent = "reconnecting…";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  indexRows();
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
    const res = await fetch("/api/alarms?" + q.toString());
    if (!res.ok) return;
    const body = await res.json();
    const episodes = body.episodes.slice().sort((a, b) =>
      (a.ended === null) === (b.ended === null) ? Date.parse(b.began) - Date.parse(a.began) : (a.ended === null ? -1 : 1));
    document.getElementById("alarm-count").textContent = "(" + body.active + " active, " + episodes.length + " in the last 24 h)";
    const trs = episodes.slice(0, 200).map((e) => {
      const tr = document.createElement("tr");
      tr.className = "alarm " + e.level.toLowerCase() + (e.ended === null ? " active" : "");
      const began = document.createElement("time");
      began.dataset.ts = e.began; began.dataset.mode = "clock"; began.textContent = e.began;
      const ended = document.createElement("time");
      if (e.ended) { ended.dataset.ts = e.ended; ended.dataset.mode = "clock"; ended.textContent = e.ended; } else ended.textContent = "active";
      const tdB = cell(""); tdB.append(began);
      const tdE = cell(""); tdE.append(ended);
      tr.append(cell(e.device), cell(e.level), cell(e.kind), cell(e.native_code || ""), cell(e.message), tdB, tdE, cell(duration(e.duration_seconds)));
      const key = e.device + "\u001f" + e.data_item_id + "\u001f" + e.began;
      if (e.level === "Fault" && e.ended === null && !seenFaults.has(key)) {
        seenFaults.add(key);
        if (!firstAlarms && notify && notify.checked && window.Notification && Notification.permission === "granted") {
          new Notification("Fault on " + e.device, { body: (e.native_code ? "[" + e.native_code + "] " : "") + e.message });
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

  ages();
  setInterval(ages, 1000);
  connect();
})();
