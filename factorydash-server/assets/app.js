// factorydash: the board (the latest-values table, the device cards, the sources and the
// banner), kept current from the live events (live.js). Agent data is untrusted: only
// textContent is ever set.
"use strict";
(function () {
  const { cell, setTime, stateLabel, ages } = window.factorydash;
  const body = document.body;
  const limit = Number(body.dataset.limit || 50);
  const deviceFilter = body.dataset.device || "";
  const rows = new Map();
  const key = (device, item) => device + "\u001f" + item;

  function indexRows() {
    rows.clear();
    for (const tr of document.querySelectorAll("tr[data-item]")) rows.set(key(tr.dataset.device, tr.dataset.item), tr);
  }

  function valueText(o) {
    const text = o.value === null ? (o.condition ? "" : "UNAVAILABLE") : o.value;
    if (o.condition) return o.condition.level + (text ? ": " + text : "");
    return text;
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
      if (state) state.textContent = stateLabel(cls);
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
      let text = s.source + ": " + stateLabel(s.state) + " · " + s.observations.toLocaleString() + " observations";
      if (s.observations_per_second >= 0.1) text += " · " + s.observations_per_second.toFixed(1) + "/s";
      if (s.gaps) text += " · " + s.gaps + " gap" + (s.gaps > 1 ? "s" : "") + " (observations the agent lost)";
      if (s.restarts) text += " · agent restarted " + s.restarts + "×";
      span.textContent = text;
      return span;
    }));
  }

  // After a reconnect whose missed messages the server no longer holds: read again.
  async function resync() {
    refetchPage();
    const res = await fetch("/api/devices");
    if (res.ok) applyDevices((await res.json()).map((d) => d.status));
  }

  indexRows();
  document.addEventListener("factorydash:latest", (ev) => {
    applyLatest(ev.detail.items);
    applyDevices(ev.detail.devices);
    ages();
  });
  document.addEventListener("factorydash:health", (ev) => applyHealth(ev.detail));
  document.addEventListener("factorydash:resync", resync);
})();
