// factorydash: the board (the latest-values table, the device tiles, the summary, the
// sources and the banner), kept current from the live events (live.js). The server
// renders everything shown (src/page.rs): this script sets a value's text (`shown`),
// places a fragment the server rendered, or orders, counts, hides and sizes what the
// server rendered; it builds no markup of its own. Agent data reaches the page only
// through the server's escaping renderer or textContent.
"use strict";
(function () {
  const { setTime, ages, fragment } = window.factorydash;
  const body = document.body;
  const limit = Number(body.dataset.limit || 50);
  const deviceFilter = body.dataset.device || "";
  const agentFilter = body.dataset.agent || "";
  const rows = new Map();
  const params = new URLSearchParams(location.search);
  const byName = params.get("order") === "name";
  const wall = body.classList.contains("wall");
  // A device is its agent and its name: two agents may serve devices of one name.
  const key = (agent, device, item) => agent + "\u001f" + device + "\u001f" + item;

  function indexRows() {
    rows.clear();
    for (const tr of document.querySelectorAll("tr[data-item]")) rows.set(key(tr.dataset.agent, tr.dataset.device, tr.dataset.item), tr);
  }

  // Reads this page again (its own filters, first page) and takes the parts named by id
  // from it: the table when new data items appear (at most once a second), everything
  // after a reconnect whose missed messages the server no longer holds.
  // Asked while a read is under way: read after it (parts asked meanwhile together).
  let refetching = false;
  const owed = new Set();
  async function reload(ids) {
    if (refetching) { for (const id of ids) owed.add(id); return; }
    refetching = true;
    try {
      const q = new URLSearchParams(location.search);
      q.delete("cursor");
      q.set("limit", String(limit));
      const res = await fetch(location.pathname + "?" + q.toString());
      if (!res.ok) return;
      const page = new DOMParser().parseFromString(await res.text(), "text/html");
      for (const id of ids) {
        const shown = document.getElementById(id);
        const fresh = page.getElementById(id);
        if (shown && fresh) shown.replaceWith(document.adoptNode(fresh));
      }
      const tbody = document.getElementById("rows");
      if (tbody && tbody.children.length) document.getElementById("empty")?.remove();
      const shown = () => [...rows.keys()].join("\n") + "\n" + Boolean(document.querySelector(".card"));
      const before = shown();
      indexRows();
      if (shown() !== before) document.dispatchEvent(new CustomEvent("factorydash:resubscribe"));
      arrange();
      ages();
    } finally {
      setTimeout(() => {
        refetching = false;
        if (owed.size) { const again = [...owed]; owed.clear(); reload(again); }
      }, 1000);
    }
  }

  function applyLatest(items) {
    // A table of a past instant (`?at=`) keeps its values.
    if (body.dataset.at) return;
    const sameAgent = (a) => a.replace(/\/$/, "") === agentFilter.replace(/\/$/, "");
    let missing = false;
    for (const o of items) {
      if (deviceFilter && o.device !== deviceFilter) continue;
      if (agentFilter && !sameAgent(o.agent)) continue;
      const tr = rows.get(key(o.agent, o.device, o.dataItemId));
      if (!tr) { missing = true; continue; }
      const v = tr.querySelector("td.value");
      v.textContent = o.shown;
      v.classList.toggle("unavailable", o.value === null);
      setTime(tr.querySelector("time"), o.timestamp);
      tr.classList.remove("changed");
      void tr.offsetWidth;
      tr.classList.add("changed");
    }
    if (missing && body.dataset.firstPage === "1" && rows.size < limit) reload(["rows"]);
  }

  // Each tile the server rendered replaces the shown one.
  function applyCards(cards) {
    for (const html of cards) {
      const card = fragment(html);
      const shown = document.querySelector('.card[data-device="' + CSS.escape(card.dataset.device) +
        '"][data-agent="' + CSS.escape(card.dataset.agent) + '"]');
      if (shown) shown.replaceWith(card);
    }
    if (cards.length) arrange();
  }

  // A board round's tile: the fields that changed set in place (text, or fragments the
  // server rendered for the conditions and the tools line), or the whole tile where its
  // frame changed. A tile is named by its number `t`, given with its device and agent
  // whenever the whole tile is sent. Whether the board's order or counts may have changed
  // is returned.
  const TEXT_FIELDS = [["availability", "f-availability"], ["execution", "f-execution"], ["mode", "f-mode"],
    ["estop", "f-estop"], ["parts", "f-parts"]];
  const tileNames = new Map();
  function tileCard(t) {
    if (t.device !== undefined) tileNames.set(t.t, [t.device, t.agent]);
    const named = tileNames.get(t.t);
    if (!named) return null;
    return document.querySelector('.card[data-device="' + CSS.escape(named[0]) +
      '"][data-agent="' + CSS.escape(named[1]) + '"]');
  }
  function setNewest(card, newest) {
    const dd = card.querySelector("dd.f-newest");
    if (dd && newest) {
      let time = dd.querySelector("time");
      if (!time) { dd.textContent = ""; time = document.createElement("time"); dd.append(time); }
      setTime(time, newest);
    } else if (dd) dd.textContent = "no data yet";
  }
  function applyTile(t) {
    const card = tileCard(t);
    if (!card) return false;
    if (t.html !== undefined) { card.replaceWith(fragment(t.html)); return true; }
    let moved = false;
    if (t.state !== undefined && t.state !== card.dataset.state) {
      card.classList.remove(card.dataset.state);
      card.classList.add(t.state);
      card.dataset.state = t.state;
      moved = true;
    }
    if (t.rank !== undefined && String(t.rank) !== card.dataset.rank) { card.dataset.rank = String(t.rank); moved = true; }
    if (t.label !== undefined) { const s = card.querySelector("h3 .state"); if (s) s.textContent = t.label; }
    for (const [field, cls] of TEXT_FIELDS) {
      if (t[field] === undefined) continue;
      const dd = card.querySelector("dd." + cls);
      if (dd) dd.textContent = t[field];
    }
    if (t.program !== undefined) {
      const span = card.querySelector("dd.f-program span");
      if (span) { span.textContent = t.program; span.title = t.program; }
    }
    if (t.oee !== undefined) { const a = card.querySelector("dd.f-oee a"); if (a) a.textContent = t.oee; }
    if (t.newest !== undefined) setNewest(card, t.newest);
    if (t.conditions !== undefined) card.querySelector("ul.conditions")?.replaceWith(fragment(t.conditions));
    if (t.tools !== undefined) {
      card.querySelector("p.tools-near")?.remove();
      if (t.tools) card.append(fragment(t.tools));
    }
    return moved;
  }

  // Board rounds are applied together at the next animation frame (at once in a hidden
  // tab, which gets no frames).
  let queued = [];
  function applyRounds() {
    const rounds = queued;
    queued = [];
    let moved = false;
    let active = false;
    for (const msg of rounds) {
      if (msg.items.length) applyLatest(msg.items);
      for (const t of msg.tiles) moved = applyTile(t) || moved;
      for (const [id, newest] of msg.newest || []) {
        const card = tileCard({ t: id });
        if (card) setNewest(card, newest);
      }
      active = active || msg.tiles.length > 0 || msg.events;
    }
    if (moved) arrange();
    ages();
    // A first page with room for more rows (a fresh start, new data items): read again
    // as data arrives (at most once a second), since rounds carry the rows shown only.
    if (active && !body.dataset.at && body.dataset.firstPage === "1" && rows.size < limit &&
        document.getElementById("rows")) reload(["rows"]);
  }
  function takeRound(msg) {
    queued.push(msg);
    if (document.hidden || queued.length > 20) applyRounds();
    else if (queued.length === 1) requestAnimationFrame(() => { if (queued.length) applyRounds(); });
  }

  // What this page shows, for the live protocol (live.js): its tiles and its rows as board
  // rounds (the device page's script asks for its device instead).
  window.factorydash.liveSubscription = () => ({
    type: "subscribe",
    view: "board",
    devices: deviceFilter ? [deviceFilter] : null,
    tiles: Boolean(document.querySelector(".card")),
    rows: body.dataset.at ? [] : [...rows.values()].map((tr) => [tr.dataset.agent, tr.dataset.device, tr.dataset.item]),
  });

  function applyHealth(msg) {
    document.getElementById("banner").replaceWith(fragment(msg.bannerHtml));
    const list = document.getElementById("sources");
    if (list) list.replaceWith(fragment(msg.sourcesHtml));
    ages();
  }

  // The tiles: ordered by what needs attention (the server's order at load; kept as states
  // change) unless `order=name`, within their cell where the board is laid out by cells
  // (a tile never leaves its cell's section), counted by state in the summary and under
  // each cell's heading, filtered to one state by `state=` (the summary's links), told
  // apart by agent where two agents serve one name, and on the wall board sized to fill
  // the screen.
  const stateFilter = params.get("state") || "";
  const cellFilter = params.get("cell") || "";
  // The wall board shows tiles while they stay readable: above this many (page.rs's
  // WALL_TILES) it shows one box per cell, or per state, with the counts (#overview).
  const WALL_TILES = 60;
  const byAttention = (a, b) => Number(a.dataset.rank) - Number(b.dataset.rank) ||
    (a.dataset.device < b.dataset.device ? -1 : a.dataset.device > b.dataset.device ? 1 : 0) ||
    (a.dataset.agent < b.dataset.agent ? -1 : a.dataset.agent > b.dataset.agent ? 1 : 0);
  const countStates = (cards) => {
    const counts = {};
    for (const c of cards) counts[c.dataset.state] = (counts[c.dataset.state] || 0) + 1;
    return counts;
  };
  // Sets the `.gc` counts (and the total) under `el` from `counts`.
  function showCounts(el, counts, total) {
    for (const gc of el.querySelectorAll(".gc")) {
      const n = counts[gc.dataset.state] || 0;
      gc.querySelector(".n").textContent = String(n);
      gc.hidden = n === 0;
    }
    const t = el.querySelector(".gtotal .n");
    if (t) t.textContent = String(total);
  }
  function arrange() {
    const grid = document.getElementById("devices");
    if (!grid) return;
    const groups = [...grid.querySelectorAll(".group")];
    const boxes = groups.length ? groups.map((g) => g.querySelector(".tiles")) : [grid];
    if (!byName) {
      for (const box of boxes) {
        const inBox = [...box.querySelectorAll(":scope > .card")];
        const sorted = inBox.slice().sort(byAttention);
        if (sorted.some((c, i) => c !== inBox[i])) box.append(...sorted);
      }
    }
    const cards = [...grid.querySelectorAll(".card")];
    const counts = countStates(cards);
    const names = new Map();
    for (const c of cards) names.set(c.dataset.device, (names.get(c.dataset.device) || 0) + 1);
    const summary = document.getElementById("summary");
    const labels = {};
    if (summary) {
      for (const a of summary.querySelectorAll("a.count")) {
        labels[a.dataset.state] = a.dataset.label;
        const n = counts[a.dataset.state] || 0;
        a.querySelector(".n").textContent = String(n);
        a.hidden = n === 0 && a.dataset.state !== stateFilter;
        a.setAttribute("aria-current", String(a.dataset.state === stateFilter));
        const q = new URLSearchParams(location.search);
        if (a.dataset.state === stateFilter) q.delete("state"); else q.set("state", a.dataset.state);
        a.href = "?" + q.toString();
      }
      summary.querySelector(".total .n").textContent = String(cards.length);
      const all = summary.querySelector("a.all");
      if (all) {
        const q = new URLSearchParams(location.search);
        q.delete("state");
        all.href = "?" + q.toString();
        all.hidden = !stateFilter;
      }
    }
    let shown = 0;
    for (const c of cards) {
      c.classList.toggle("ambiguous", names.get(c.dataset.device) > 1);
      c.hidden = Boolean(stateFilter) && c.dataset.state !== stateFilter;
      if (!c.hidden) shown++;
    }
    // Each cell's counts, under its heading and in its overview box.
    const overview = document.getElementById("overview");
    const cellCounts = new Map();
    for (const g of groups) {
      const inCell = [...g.querySelectorAll(".card")];
      const n = countStates(inCell);
      cellCounts.set(g.dataset.cell, { counts: n, total: inCell.length });
      showCounts(g.querySelector(".group-counts"), n, inCell.length);
      g.hidden = inCell.every((c) => c.hidden);
    }
    if (!wall) return;
    const crowded = !stateFilter && !cellFilter && cards.length > WALL_TILES;
    grid.hidden = crowded;
    if (overview) {
      overview.hidden = !crowded;
      let boxesShown = 0;
      for (const box of overview.querySelectorAll(".box")) {
        const mine = box.dataset.cell !== undefined
          ? cellCounts.get(box.dataset.cell) || { counts: {}, total: 0 }
          : { counts: { [box.dataset.state]: counts[box.dataset.state] || 0 }, total: counts[box.dataset.state] || 0 };
        showCounts(box, mine.counts, mine.total);
        box.hidden = mine.total === 0;
        if (!box.hidden) boxesShown++;
        // Coloured by its most urgent state, which it also says.
        const worst = Object.keys(labels).find((s) => mine.counts[s] > 0);
        if (worst && box.dataset.cell !== undefined) {
          for (const s of Object.keys(labels)) box.classList.toggle(s, s === worst);
          const said = box.querySelector(".box-worst");
          if (said) said.textContent = labels[worst];
        }
      }
      if (crowded) { fit(overview, boxesShown); return; }
    }
    fit(grid, shown);
  }

  // The wall board: the columns and rows that give `n` tiles the largest size on the
  // screen, each tile about twice as wide as high; the type follows the tile (app.css).
  function fit(grid, n) {
    const w = grid.clientWidth, h = grid.clientHeight;
    if (!w || !h || !n) return;
    let best = { cols: 1, rows: n, size: 0 };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const tileW = w / cols, tileH = h / rows;
      const size = Math.min(tileW / 2, tileH);
      if (size > best.size) best = { cols, rows, size };
    }
    grid.style.setProperty("--cols", String(best.cols));
    grid.style.setProperty("--rows", String(best.rows));
  }

  indexRows();
  arrange();
  window.addEventListener("resize", () => arrange());
  document.addEventListener("factorydash:latest", (ev) => {
    applyLatest(ev.detail.items);
    applyCards(ev.detail.cardsHtml);
    ages();
  });
  document.addEventListener("factorydash:board", (ev) => takeRound(ev.detail));
  document.addEventListener("factorydash:health", (ev) => applyHealth(ev.detail));
  // A board client that fell behind was sent every tile: only its rows are read again.
  document.addEventListener("factorydash:resync", (ev) => reload(ev.detail && ev.detail.rows
    ? ["rows"] : ["rows", "devices", "overview", "banner", "sources"]));
  document.addEventListener("factorydash:reconnected", () => reload(["rows"]));
})();
