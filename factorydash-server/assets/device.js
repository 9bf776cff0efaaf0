// factorydash device page: a chart of one data item over a window (uPlot, drawn from the
// server's downsampled series, never more than about twice the chart's width in points),
// appended live, zoomable by dragging; sparklines of every Sample. Agent data is untrusted:
// only textContent is ever set. Live values arrive through app.js ("factorydash:latest").
"use strict";
(function () {
  // A device is its agent and its name: both go with every request.
  const device = document.body.dataset.device;
  const agent = document.body.dataset.agent;
  const select = document.getElementById("item");
  const chartEl = document.getElementById("chart");
  const note = document.getElementById("chart-note");
  let windowSeconds = 3600;
  let custom = null; // {from, to} in ms since the epoch, when a range is chosen
  let plot = null;
  let data = [[], []];

  const range = () => custom || { from: Date.now() - windowSeconds * 1000, to: Date.now() };
  const width = () => Math.max(300, chartEl.clientWidth || 800);

  async function series(item, from, to, maxPoints) {
    const q = new URLSearchParams({
      device, agent, dataItemId: item, from: new Date(from).toISOString(),
      to: new Date(to).toISOString(), maxPoints: String(maxPoints),
    });
    const res = await fetch("/api/series?" + q.toString());
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body;
  }

  function exportLinks(item, r) {
    for (const format of ["csv", "ndjson"]) {
      const q = new URLSearchParams({
        device, agent, dataItemId: item, from: new Date(r.from).toISOString(),
        to: new Date(r.to).toISOString(), format,
      });
      document.getElementById("export-" + format).href = "/api/export?" + q.toString();
    }
  }

  // The chart's axes in the page's colours (light or dark theme), read when drawn.
  function axes() {
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--fg").trim() || "#1b1f24";
    const line = css.getPropertyValue("--line").trim() || "#d8dde3";
    const axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
    return [axis, Object.assign({}, axis)];
  }

  let drawn = null;
  function draw(r) {
    drawn = r;
    const label = select.selectedOptions[0] ? select.selectedOptions[0].textContent : "";
    const opts = {
      width: width(), height: 320,
      scales: { x: { time: true, min: r.from / 1000, max: r.to / 1000 } },
      axes: axes(),
      series: [{}, { label, stroke: "#0969da", width: 1.5, spanGaps: false }],
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const from = u.posToVal(u.select.left, "x") * 1000;
          const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
          custom = { from, to };
          load();
        }],
      },
    };
    if (plot) plot.destroy();
    plot = new uPlot(opts, data, chartEl);
  }

  // A theme switched in the header or in the system: the chart again in its colours.
  const redraw = () => { if (drawn && plot) draw(drawn); };
  document.addEventListener("factorydash:theme", redraw);
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);

  // Utilization: the Execution states over the window as a timeline, and their shares.
  const colours = { ACTIVE: "var(--active)", READY: "var(--idle)", STOPPED: "var(--stopped)",
    INTERRUPTED: "var(--stopped)", FEED_HOLD: "var(--stopped)", UNAVAILABLE: "var(--unavail)" };
  async function utilization(r) {
    const timeline = document.getElementById("timeline");
    const shares = document.getElementById("shares");
    const q = new URLSearchParams({ device, agent, from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), limit: "10000" });
    const res = await fetch("/api/utilization?" + q.toString());
    const body = await res.json();
    if (!res.ok) { shares.replaceChildren(); timeline.textContent = body.error || res.statusText; return; }
    // The intervals come a page at a time: follow the pages up to 50,000 intervals (the
    // shares always cover the whole window).
    let intervals = body.intervals, next = body.next;
    while (next && intervals.length < 50000) {
      q.set("cursor", next);
      const more = await fetch("/api/utilization?" + q.toString());
      if (!more.ok) break;
      const page = await more.json();
      intervals = intervals.concat(page.intervals);
      next = page.next;
    }
    const span = r.to - r.from;
    timeline.replaceChildren(...intervals.map((i) => {
      const d = document.createElement("span");
      const from = Date.parse(i.from), to = Date.parse(i.to);
      d.style.left = ((from - r.from) / span * 100) + "%";
      d.style.width = Math.max(0.1, (to - from) / span * 100) + "%";
      d.style.background = colours[i.state] || "var(--muted)";
      d.title = i.state + ": " + new Date(from).toLocaleString() + " – " + new Date(to).toLocaleString();
      return d;
    }));
    shares.replaceChildren(...body.shares.map((s) => {
      const li = document.createElement("li");
      li.textContent = s.state + " " + (s.share * 100).toFixed(1) + "%";
      li.dataset.state = s.state;
      return li;
    }));
  }

  async function load() {
    const item = select.value;
    utilization(range()).catch(() => {});
    if (!item) return;
    const r = range();
    exportLinks(item, r);
    try {
      const s = await series(item, r.from, r.to, 2 * width());
      data = [s.points.map((p) => Date.parse(p[0]) / 1000), s.points.map((p) => p[1])];
      note.textContent = s.numeric.toLocaleString() + " numeric observations in the window, " + s.points.length +
        " points drawn" + (s.numeric > s.points.length ? " (downsampled on the server, M4)" : "") +
        (custom ? ". Drag to zoom; pick a window to follow live again." : ". Following live; drag to zoom.");
      draw(r);
    } catch (e) {
      note.textContent = "Cannot load the series: " + e.message;
    }
  }

  // Live: append the chosen item's new values while following a window.
  document.addEventListener("factorydash:latest", (ev) => {
    if (custom || !plot) return;
    let changed = false;
    for (const o of ev.detail.items) {
      if (o.device !== device || o.agent !== agent || o.dataItemId !== select.value) continue;
      const v = Number(o.value);
      if (o.value === null || Number.isNaN(v)) continue;
      const t = Date.parse(o.timestamp) / 1000;
      if (data[0].length && t <= data[0][data[0].length - 1]) continue;
      data[0].push(t);
      data[1].push(v);
      changed = true;
    }
    const r = range();
    while (data[0].length && data[0][0] < r.from / 1000) { data[0].shift(); data[1].shift(); }
    if (changed) plot.setData(data, false);
    plot.setScale("x", { min: r.from / 1000, max: r.to / 1000 });
  });

  for (const b of document.querySelectorAll("button.window")) {
    b.addEventListener("click", () => {
      windowSeconds = Number(b.dataset.seconds);
      custom = null;
      for (const o of document.querySelectorAll("button.window")) o.setAttribute("aria-pressed", String(o === b));
      load();
    });
  }
  document.getElementById("chart-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const from = Date.parse(document.getElementById("from").value);
    const to = Date.parse(document.getElementById("to").value);
    if (Number.isNaN(from) || Number.isNaN(to) || to <= from) {
      note.textContent = "Choose a start before the end.";
      return;
    }
    custom = { from, to };
    load();
  });
  select.addEventListener("change", load);
  window.addEventListener("resize", () => { if (plot) plot.setSize({ width: width(), height: 320 }); });

  // Sparklines: the last hour of every Sample, 60 points each.
  async function sparkline(canvas) {
    const to = Date.now();
    try {
      const s = await series(canvas.dataset.item, to - 3600 * 1000, to, 60);
      const ys = s.points.map((p) => p[1]);
      canvas.dataset.points = String(ys.length);
      if (ys.length < 2) return;
      const min = Math.min(...ys);
      const span = Math.max(...ys) - min || 1;
      const g = canvas.getContext("2d");
      g.strokeStyle = "#0969da";
      g.beginPath();
      ys.forEach((y, i) => {
        const px = (i / (ys.length - 1)) * (canvas.width - 2) + 1;
        const py = canvas.height - 2 - ((y - min) / span) * (canvas.height - 4);
        if (i === 0) g.moveTo(px, py); else g.lineTo(px, py);
      });
      g.stroke();
    } catch (e) {
      canvas.title = e.message;
    }
  }
  for (const c of document.querySelectorAll("canvas.spark")) sparkline(c);
  load();
})();
