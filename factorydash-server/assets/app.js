// factorydash: the board (the latest-values table, the device tiles, the sources and the
// banner), kept current from the live events (live.js). The server renders everything
// shown (src/page.rs): this script sets a value's text (`shown`) or places a fragment the
// server rendered, and builds no markup of its own. Agent data reaches the page only
// through the server's escaping renderer or textContent.
"use strict";
(function () {
  const { setTime, ages, fragment } = window.factorydash;
  const body = document.body;
  const limit = Number(body.dataset.limit || 50);
  const deviceFilter = body.dataset.device || "";
  const agentFilter = body.dataset.agent || "";
  const rows = new Map();
  // A device is its agent and its name: two agents may serve devices of one name.
  const key = (agent, device, item) => agent + "\u001f" + device + "\u001f" + item;

  function indexRows() {
    rows.clear();
    for (const tr of document.querySelectorAll("tr[data-item]")) rows.set(key(tr.dataset.agent, tr.dataset.device, tr.dataset.item), tr);
  }

  // Reads this page again (its own filters, first page) and takes the parts named by id
  // from it: the table when new data items appear (at most once a second), everything
  // after a reconnect whose missed messages the server no longer holds.
  let refetching = false;
  async function reload(ids) {
    if (refetching) return;
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
      indexRows();
      ages();
    } finally {
      setTimeout(() => { refetching = false; }, 1000);
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
  }

  function applyHealth(msg) {
    document.getElementById("banner").replaceWith(fragment(msg.bannerHtml));
    const list = document.getElementById("sources");
    if (list) list.replaceWith(fragment(msg.sourcesHtml));
    ages();
  }

  indexRows();
  document.addEventListener("factorydash:latest", (ev) => {
    applyLatest(ev.detail.items);
    applyCards(ev.detail.cardsHtml);
    ages();
  });
  document.addEventListener("factorydash:health", (ev) => applyHealth(ev.detail));
  document.addEventListener("factorydash:resync", () => reload(["rows", "devices", "banner", "sources"]));
})();
