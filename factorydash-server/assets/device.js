// factorydash device page: a chart of one or several data items (of this device or of
// others) over a window, drawn with uPlot from the server's downsampled series (M4, never
// more than about twice the chart's width in points per series); the state bands of the
// device under it (Execution, Availability, Controller mode, Condition) on the same time
// axis; sparklines of every Sample.
//
// A value holds until the next observation (MTConnect Part 3: observations are reported
// when they change), so a Sample is drawn as steps, and UNAVAILABLE (a null point from the
// server) as a break in the line, never as a zero. Axis labels always show the number in
// full: as many decimals as the tick spacing needs, the axis as wide as its widest label,
// the data item's units on it.
//
// Each charted series' limits from the device model (MTConnect Part 2: its DataItem's
// Constraints, its Component's Specifications; served by /api/devices) are drawn as
// dashed lines of its colour on its own y axis, labelled; the y scale takes in every
// limit near the data, and a limit the data went past is drawn thicker, "crossed", with
// the side beyond it shaded. Thresholds set by hand (the form under the chart) are drawn
// the same way in the text colour on the left axis.
//
// Everything the view is (its series, its window, the zoom, the thresholds set by hand,
// whether the model's limits are shown) is in the address, so a view can be bookmarked or
// sent, and a wall screen opened on it follows live.
// Agent data is untrusted: only textContent is ever set. Live values arrive through
// app.js ("factorydash:latest").
"use strict";
(function () {
  const { clock, fromZoned, toZoned, zone } = window.factorydash;
  // A device is its agent and its name: both go with every request.
  const device = document.body.dataset.device;
  const agent = document.body.dataset.agent;
  // Live: this device's latest messages (every value, for the charts and the table).
  window.factorydash.liveSubscription = () => ({ type: "subscribe", devices: [device] });
  // (The socket may have opened with the board's subscription before this ran.)
  document.dispatchEvent(new CustomEvent("factorydash:resubscribe"));
  const select = document.getElementById("item");
  const chartEl = document.getElementById("chart");
  const note = document.getElementById("chart-note");
  const list = document.getElementById("series-list");
  const palette = ["#0969da", "#d1242f", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#6e7781"];
  const PRESETS = { "5m": 300, "15m": 900, "1h": 3600, "8h": 28800, "24h": 86400, "7d": 604800, "30d": 2592000 };
  const MAX_SERIES = 8;
  const MAX_THRESHOLDS = 8;
  const MAX_LABEL = 40;

  // th=VALUE or th=VALUE|LABEL, at most MAX_THRESHOLDS; a value that is not a finite
  // number is left out, a label cut to MAX_LABEL characters.
  function readThresholds(q) {
    const out = [];
    for (const spec of q.getAll("th")) {
      const bar = spec.indexOf("|");
      const text = (bar < 0 ? spec : spec.slice(0, bar)).trim();
      const value = Number(text);
      if (!text || !Number.isFinite(value) || out.length >= MAX_THRESHOLDS) continue;
      out.push({ value, label: bar < 0 ? "" : spec.slice(bar + 1).trim().slice(0, MAX_LABEL) });
    }
    return out;
  }

  // "90m", "3h", "2d": a window of that length ending now, as Grafana's "last N".
  function windowSeconds(text) {
    const m = /^(\d{1,5})(m|h|d)$/.exec(text || "");
    if (!m) return null;
    const s = Number(m[1]) * { m: 60, h: 3600, d: 86400 }[m[2]];
    return s >= 60 && s <= 366 * 86400 ? s : null;
  }

  // The view, read from and written to the address.
  // item=ID (this device), item=DEVICE|ID (another device) or item=AGENT|DEVICE|ID.
  function readView() {
    const q = new URLSearchParams(location.search);
    const series = [];
    for (const spec of q.getAll("item")) {
      const parts = spec.split("|");
      const id = parts.pop();
      const dev = parts.length ? parts.pop() : device;
      const ag = parts.length ? parts.join("|") : (dev === device ? agent : "");
      if (id && !series.some((s) => s.device === dev && s.agent === ag && s.id === id)) series.push({ device: dev, agent: ag, id });
    }
    const from = Date.parse(q.get("from") || ""), to = Date.parse(q.get("to") || "");
    const custom = !Number.isNaN(from) && !Number.isNaN(to) && to > from ? { from, to } : null;
    const win = windowSeconds(q.get("window")) ? q.get("window") : "1h";
    return { series: series.slice(0, MAX_SERIES), window: win, custom, thresholds: readThresholds(q), limits: q.get("limits") !== "off" };
  }
  function writeView() {
    const q = new URLSearchParams(location.search);
    q.delete("item"); q.delete("window"); q.delete("from"); q.delete("to"); q.delete("th"); q.delete("limits");
    for (const s of view.series) {
      q.append("item", s.device === device && s.agent === agent ? s.id : (s.agent ? s.agent + "|" : "") + s.device + "|" + s.id);
    }
    if (view.custom) {
      q.set("from", new Date(view.custom.from).toISOString());
      q.set("to", new Date(view.custom.to).toISOString());
    } else {
      q.set("window", view.window);
    }
    for (const t of view.thresholds) q.append("th", String(t.value) + (t.label ? "|" + t.label : ""));
    if (!view.limits) q.set("limits", "off");
    history.replaceState(null, "", "?" + q.toString() + location.hash);
  }

  const view = readView();
  if (!view.series.length && select && select.value) view.series.push({ device, agent, id: select.value });

  const range = () => view.custom || { from: Date.now() - windowSeconds(view.window) * 1000, to: Date.now() };
  const width = () => Math.max(280, chartEl.clientWidth || 800);

  // What the page knows of every data item (units, type, name), by "agent|device|id":
  // this device's from the item list, others' from /api/devices when first needed.
  const known = new Map();
  const itemKey = (s) => s.agent + "\u001f" + s.device + "\u001f" + s.id;
  if (select) {
    for (const o of select.options) known.set(itemKey({ device, agent, id: o.value }), { units: o.dataset.units || "", name: o.dataset.name || o.value, type: o.dataset.type || "" });
  }
  let devicesLoaded = null;
  function loadDevices() {
    devicesLoaded = devicesLoaded || fetch("/api/devices").then((r) => r.ok ? r.json() : []).then((all) => {
      for (const { device: d } of all) {
        for (const i of d.dataItems || []) {
          known.set(itemKey({ device: d.name, agent: d.agent, id: i.id }), { units: i.units || "", name: i.name || i.id, type: i.type, category: i.category, limits: i.limits || [] });
        }
      }
      return all;
    }).catch(() => []);
    return devicesLoaded;
  }

  async function fetchSeries(s, from, to, maxPoints) {
    const q = new URLSearchParams({ device: s.device, dataItemId: s.id, from: new Date(from).toISOString(),
      to: new Date(to).toISOString(), maxPoints: String(maxPoints) });
    if (s.agent) q.set("agent", s.agent);
    const res = await fetch("/api/series?" + q.toString());
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body.series ? body.series[0] : body;
  }

  function exportLinks(r) {
    const base = new URLSearchParams({ from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString() });
    for (const s of view.series) {
      base.append("device", s.device);
      base.append("agent", s.agent);
      base.append("dataItemId", s.id);
    }
    for (const [id, extra] of [["export-csv", { format: "csv" }], ["export-wide", { format: "csv", shape: "wide" }], ["export-ndjson", { format: "ndjson" }]]) {
      const a = document.getElementById(id);
      if (!a) continue;
      const q = new URLSearchParams(base);
      for (const [k, v] of Object.entries(extra)) q.set(k, v);
      a.href = "/api/export?" + q.toString();
      a.hidden = !view.series.length;
    }
  }

  // Tick labels: the decimals the spacing needs (2.5 → one, 0.001 → three), grouped
  // thousands, and distinct from each other; never cut (the axis is sized to fit them).
  function decimalsOf(step) {
    if (!Number.isFinite(step) || step <= 0) return 0;
    const text = String(Number(step.toPrecision(10)));
    const e = /e-(\d+)$/.exec(text);
    if (e) return Math.min(20, Number(e[1]) + ((text.split("e")[0].split(".")[1] || "").length));
    return Math.min(20, (text.split(".")[1] || "").length);
  }
  const formats = new Map();
  function fmt(v, d) {
    if (!formats.has(d)) formats.set(d, new Intl.NumberFormat(undefined, { minimumFractionDigits: d, maximumFractionDigits: d }));
    return formats.get(d).format(v);
  }
  function tickLabels(u, splits) {
    if (!splits.length) return [];
    const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : Math.abs(splits[0]) || 1;
    let d = decimalsOf(step);
    let labels = splits.map((v) => v == null ? "" : fmt(v, d));
    while (new Set(labels).size < labels.length && d < 20) labels = splits.map((v) => v == null ? "" : fmt(v, ++d));
    return labels;
  }
  // The axis as wide as its widest label (uPlot's autosize recipe), plus its units label.
  function axisSize(u, values, i, cycle) {
    const axis = u.axes[i];
    if (cycle > 1) return axis._size;
    let size = axis.ticks.size + axis.gap;
    const longest = (values || []).reduce((a, v) => (v && v.length > a.length ? v : a), "");
    if (longest) {
      u.ctx.font = axis.font[0];
      size += u.ctx.measureText(longest).width / devicePixelRatio;
    }
    return Math.ceil(size) + 4;
  }
  const legendValue = (units) => (u, v) => v == null ? "—" : v.toLocaleString(undefined, { maximumFractionDigits: 6 }) + (units ? " " + units : "");

  let plot = null;
  let loaded = []; // per series: { s, xs, ys, units, label, error }
  let drawnRange = null;

  function colours() {
    const css = getComputedStyle(document.documentElement);
    return { fg: css.getPropertyValue("--fg").trim() || "#1b1f24", line: css.getPropertyValue("--line").trim() || "#d8dde3",
      card: css.getPropertyValue("--card").trim() || "#fff" };
  }

  // Limits and thresholds. MTConnect units as a label writes them ("max 500 mm").
  const SHORT_UNITS = { MILLIMETER: "mm", DEGREE: "°", PERCENT: "%", CELSIUS: "°C", "MILLIMETER/SECOND": "mm/s",
    "REVOLUTION/MINUTE": "rpm", NEWTON: "N", NEWTON_METER: "N·m", AMPERE: "A", VOLT: "V", WATT: "W", SECOND: "s",
    "DEGREE/SECOND": "°/s", KILOGRAM: "kg", PASCAL: "Pa", LITER: "l", "MILLIMETER/SECOND^2": "mm/s²", HERTZ: "Hz" };
  const KIND_LABELS = { Maximum: "max", UpperLimit: "upper limit", UpperWarning: "upper warning", Nominal: "nominal",
    LowerWarning: "lower warning", LowerLimit: "lower limit", Minimum: "min" };
  const UPPER = new Set(["Maximum", "UpperLimit", "UpperWarning"]);
  const LOWER = new Set(["Minimum", "LowerLimit", "LowerWarning"]);
  const GROUPS = { ControlLimits: "control", SpecificationLimits: "specification", AlarmLimits: "alarm" };
  const number = (v) => v.toLocaleString(undefined, { maximumFractionDigits: 6 });
  // A table's own entry, or the text itself: agent text such as "constructor" is never
  // looked up on Object.prototype.
  const own = (table, key) => (Object.hasOwn(table, key) ? table[key] : key);
  function limitLabel(lim, units) {
    const u = lim.units || units;
    return own(KIND_LABELS, lim.type) + " " + number(lim.value) + (u ? " " + own(SHORT_UNITS, u) : "") +
      (lim.group ? " (" + own(GROUPS, lim.group) + ")" : "");
  }
  // What the chart draws over the series: each shown series' limits (unless hidden), then
  // the thresholds set by hand, each with its scale, colour and whether the data in the
  // window went past it (beyond an upper or lower limit; across a hand-set threshold).
  function thresholdsOf(shown, scaleOf, fg) {
    const out = [];
    const ys = (ls) => ls.flatMap((l) => l.ys).filter((y) => y != null);
    if (view.limits) {
      for (const l of shown) {
        const mine = ys([l]);
        for (const lim of l.limits || []) {
          const upper = UPPER.has(lim.type), lower = LOWER.has(lim.type);
          out.push({ value: lim.value, label: limitLabel(lim, l.units), type: lim.type, source: lim.source, series: l.label,
            colour: l.colour, scale: scaleOf(l), side: upper ? 1 : lower ? -1 : 0,
            crossed: upper ? mine.some((y) => y > lim.value) : lower ? mine.some((y) => y < lim.value) : false });
        }
      }
    }
    const left = ys(shown.filter((l) => scaleOf(l) === "y"));
    for (const t of view.thresholds) {
      out.push({ value: t.value, label: t.label || "threshold " + number(t.value), type: "threshold", source: "hand",
        series: null, colour: fg, scale: "y", side: 0,
        crossed: left.some((y) => y > t.value) && left.some((y) => y < t.value) });
    }
    return out;
  }
  let drawn = []; // what thresholdsOf gave for the chart drawn now
  let rethreshold = () => {}; // thresholdsOf again over the data as it is now (live)
  // A scale's range: the data's, widened to every hand-set threshold and to each limit
  // near the data (within the data's span, or a quarter of its magnitude, of it); a limit
  // far off (a 7,000 mm/s rapid rate over a feed of 20) would flatten the data and is not
  // taken in. Without data, every threshold on the scale is.
  function yRange(key, dmin, dmax) {
    let lo = dmin, hi = dmax;
    const data = lo != null && hi != null && Number.isFinite(lo) && Number.isFinite(hi);
    const reach = data ? Math.max(hi - lo, 0.25 * Math.max(Math.abs(lo), Math.abs(hi)), 1e-9) : Infinity;
    for (const t of drawn) {
      if (t.scale !== key) continue;
      const near = t.source === "hand" || !data || (t.value >= lo - reach && t.value <= hi + reach);
      t.inRange = near;
      if (!near) continue;
      lo = lo == null || !Number.isFinite(lo) ? t.value : Math.min(lo, t.value);
      hi = hi == null || !Number.isFinite(hi) ? t.value : Math.max(hi, t.value);
    }
    if (lo == null || hi == null || !Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
    return uPlot.rangeNum(lo, hi, 0.1, true);
  }
  // The lines, on the canvas after the series: dashed, in their colour, each labelled at
  // the right end (moved left where labels would overlap); a crossed one thicker, with the
  // side beyond it shaded.
  function drawThresholds(u) {
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const dpr = devicePixelRatio || 1;
    const { card } = colours();
    ctx.save();
    ctx.beginPath(); ctx.rect(left, top, width, height); ctx.clip();
    ctx.font = (12 * dpr) + "px system-ui, sans-serif";
    const placed = [];
    for (const t of drawn) {
      const sc = u.scales[t.scale];
      t.visible = false;
      if (!sc || sc.min == null || sc.max == null || t.value < sc.min || t.value > sc.max) continue;
      t.visible = true;
      const y = Math.round(u.valToPos(t.value, t.scale, true)) + 0.5;
      if (t.crossed && t.side) {
        ctx.globalAlpha = 0.08;
        ctx.fillStyle = t.colour;
        if (t.side > 0) ctx.fillRect(left, top, width, y - top); else ctx.fillRect(left, y, width, top + height - y);
        ctx.globalAlpha = 1;
      }
      ctx.strokeStyle = t.colour;
      ctx.lineWidth = (t.crossed ? 2.5 : 1.5) * dpr;
      ctx.setLineDash([6 * dpr, 4 * dpr]);
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
      ctx.setLineDash([]);
      const text = t.label + (t.crossed ? " · crossed" : "");
      const w = ctx.measureText(text).width + 8 * dpr, h = 16 * dpr;
      const above = y - top > h + 2 * dpr;
      let box = { x: left + width - w - 4 * dpr, y: above ? y - h - 2 * dpr : y + 2 * dpr, w, h };
      for (let moved = true; moved;) {
        moved = false;
        for (const p of placed) {
          if (box.x < p.x + p.w && p.x < box.x + box.w && box.y < p.y + p.h && p.y < box.y + box.h) {
            box.x = p.x - box.w - 4 * dpr;
            moved = true;
          }
        }
      }
      placed.push(box);
      ctx.globalAlpha = 0.85;
      ctx.fillStyle = card;
      ctx.fillRect(box.x, box.y, box.w, box.h);
      ctx.globalAlpha = 1;
      ctx.fillStyle = t.colour;
      ctx.textBaseline = "middle";
      ctx.fillText(text, box.x + 4 * dpr, box.y + h / 2);
    }
    ctx.restore();
  }

  // The loaded series as uPlot data: one time axis (joined; a series without a point at a
  // time is skipped there, not broken), each value holding until the next (steps), the
  // last one held to the window's end or now, UNAVAILABLE kept as null (a break).
  function chartData(r) {
    const shown = loaded.filter((l) => !l.error);
    const end = Math.min(r.to, Date.now()) / 1000;
    const tables = shown.map((l) => {
      const xs = l.xs.slice(), ys = l.ys.slice();
      if (xs.length && ys[ys.length - 1] != null && xs[xs.length - 1] < end) { xs.push(end); ys.push(ys[ys.length - 1]); }
      return [xs, ys];
    });
    if (!tables.length) return { shown, data: [[]] };
    return { shown, data: uPlot.join(tables, tables.map(() => [1])) };
  }

  function draw(r) {
    drawnRange = r;
    const { shown, data } = chartData(r);
    const { fg, line } = colours();
    // One y scale per unit: the first on the left, the second on the right.
    const units = [...new Set(shown.map((l) => l.units))];
    const scaleOf = (l) => (units.indexOf(l.units) === 0 ? "y" : "y2");
    drawn = thresholdsOf(shown, scaleOf, fg);
    rethreshold = () => { drawn = thresholdsOf(chartData(drawnRange).shown, scaleOf, fg); };
    const axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 }, font: "13px system-ui, sans-serif", labelFont: "600 13px system-ui, sans-serif" };
    const axes = [Object.assign({}, axis, {
      // As precise as the ticks are apart: fractions of a second, seconds, minutes, or
      // the day and time; never two ticks with one label. Ticks far enough apart for the
      // widest of these labels (uPlot's default 50 px let them touch).
      space: 100,
      values: (u, splits, i, space, incr) => splits.map((t) => {
        const ms = Math.round(t * 1000);
        const text = clock(ms, false);
        if (incr < 1) {
          const d = Math.min(3, decimalsOf(incr));
          return text.slice(11, 19) + "." + String(((ms % 1000) + 1000) % 1000).padStart(3, "0").slice(0, d);
        }
        if (incr < 60) return text.slice(11, 19);
        if (incr < 86400) return u.scales.x.max - u.scales.x.min > 86400 ? text.slice(5, 16) : text.slice(11, 16);
        return text.slice(0, 10);
      }),
    })];
    units.slice(0, 2).forEach((unit, i) => {
      axes.push(Object.assign({}, axis, {
        scale: i === 0 ? "y" : "y2", side: i === 0 ? 3 : 1, label: unit || "(no units)", labelSize: 20,
        values: tickLabels, size: axisSize, grid: i === 0 ? axis.grid : { show: false },
      }));
    });
    const scales = { x: { time: true, min: r.from / 1000, max: r.to / 1000 } };
    for (const k of ["y", "y2"]) scales[k] = { auto: true, range: (u, dmin, dmax) => yRange(k, dmin, dmax) };
    const tz = zone();
    const opts = {
      width: width(), height: 340,
      // Ticks at round times of the zone shown (midnight, the hour), not of the browser's.
      tzDate: (t) => uPlot.tzDate(new Date(t * 1000), tz),
      scales, axes,
      series: [{ value: (u, t) => t == null ? "—" : clock(t * 1000, true) }].concat(shown.map((l) => ({
        label: l.label, stroke: l.colour, width: 2, scale: scaleOf(l), spanGaps: false,
        paths: uPlot.paths.stepped({ align: 1 }), points: { show: false }, value: legendValue(l.units),
      }))),
      legend: { live: true },
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const from = u.posToVal(u.select.left, "x") * 1000;
          const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
          view.custom = { from, to };
          load();
        }],
        draw: [(u) => { drawThresholds(u); alignBands(); }],
      },
    };
    if (plot) plot.destroy();
    plot = new uPlot(opts, data, chartEl);
  }

  // The bands under the chart share its time axis: their tracks span the plot area.
  function alignBands() {
    const bands = document.getElementById("bands");
    if (!plot || !bands) return;
    const o = plot.over.getBoundingClientRect(), b = bands.getBoundingClientRect();
    bands.style.setProperty("--plot-left", Math.max(0, o.left - b.left) + "px");
    bands.style.setProperty("--plot-width", o.width + "px");
  }

  function renderChips() {
    if (!list) return;
    list.replaceChildren(...view.series.map((s, i) => {
      const li = document.createElement("li");
      const info = known.get(itemKey(s)) || {};
      li.style.borderColor = palette[i % palette.length];
      li.textContent = (s.device === device ? "" : s.device + " · ") + (info.name || s.id) + (info.units ? " (" + info.units + ")" : "");
      li.title = s.agent + " · " + s.device + " · " + s.id;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.title = "Remove from the chart";
      remove.setAttribute("aria-label", "Remove " + li.textContent);
      remove.addEventListener("click", () => { view.series.splice(i, 1); load(); });
      li.append(remove);
      return li;
    }));
  }

  let loading = 0;
  async function load() {
    const mine = ++loading;
    const started = performance.now();
    const r = range();
    writeView();
    exportLinks(r);
    renderChips();
    for (const b of document.querySelectorAll("button.window")) b.setAttribute("aria-pressed", String(!view.custom && b.dataset.window === view.window));
    document.getElementById("from").value = toZoned(r.from).slice(0, 19);
    document.getElementById("to").value = toZoned(r.to).slice(0, 19);
    bands(r).catch(() => {});
    if (!view.series.length) { if (plot) { plot.destroy(); plot = null; } note.textContent = "Add a data item to chart it."; return; }
    // The model's limits come with /api/devices, read once.
    await loadDevices();
    const results = await Promise.all(view.series.map(async (s, i) => {
      const info = known.get(itemKey(s)) || {};
      const base = { s, colour: palette[i % palette.length], units: info.units || "", limits: info.limits || [],
        label: (s.device === device ? "" : s.device + " · ") + (info.name || s.id) };
      try {
        const body = await fetchSeries(s, r.from, r.to, 2 * width());
        const xs = [], ys = [];
        for (const p of body.points) { xs.push(Date.parse(p[0]) / 1000); ys.push(p[1] == null ? null : Number(p[1])); }
        return Object.assign(base, { xs, ys, numeric: body.numeric || 0, units: body.units != null ? body.units || "" : base.units });
      } catch (e) {
        return Object.assign(base, { error: e.message, xs: [], ys: [] });
      }
    }));
    if (mine !== loading) return;
    loaded = results;
    const units = new Set(loaded.filter((l) => !l.error).map((l) => l.units));
    const errors = loaded.filter((l) => l.error).map((l) => l.label + ": " + l.error);
    if (units.size > 2) errors.push("at most two kinds of units on one chart: remove a series of other units");
    if (units.size > 2) loaded = loaded.filter((l) => l.error || [...units].slice(0, 2).includes(l.units));
    const numeric = loaded.reduce((n, l) => n + (l.numeric || 0), 0);
    const points = loaded.reduce((n, l) => n + l.xs.length, 0);
    draw(r);
    renderThresholds();
    // What was drawn, for people measuring the page and for the browser tests.
    window.factorydashChart = { drawnMs: performance.now() - started, points, numeric,
      get plot() { return plot; },
      // What is drawn over the series (see thresholdsOf), read as it is now.
      get thresholds() { return drawn.map(({ value, label, type, source, series, colour, scale, crossed, visible, inRange }) =>
        ({ value, label, type, source, series, colour, scale, crossed, visible, inRange })); } };
    note.textContent = numeric.toLocaleString() + " numeric observations in the window, " + points.toLocaleString() +
      " points drawn" + (numeric > points ? " (downsampled on the server, M4)" : "") +
      (view.custom ? ". Drag to zoom; pick a window to follow live again." : ". Following live; drag to zoom.") +
      (errors.length ? " Cannot show " + errors.join("; ") + "." : "");
  }

  // The state bands: Execution (with its shares of the window), Availability and
  // Controller mode from /api/utilization, Condition from /api/alarms.
  const stateColours = { ACTIVE: "var(--active)", READY: "var(--idle)", STOPPED: "var(--stopped)",
    INTERRUPTED: "var(--stopped)", FEED_HOLD: "var(--stopped)", OPTIONAL_STOP: "var(--stopped)", PROGRAM_STOPPED: "var(--stopped)",
    PROGRAM_COMPLETED: "var(--idle)", WAIT: "var(--idle)", UNAVAILABLE: "var(--unavail)", AVAILABLE: "var(--active)",
    AUTOMATIC: "var(--active)", MANUAL: "var(--idle)", MANUAL_DATA_INPUT: "var(--idle)", SEMI_AUTOMATIC: "var(--idle)", EDIT: "var(--idle)",
    Fault: "var(--fault)", Warning: "var(--idle)" };
  function segment(from, to, r, state) {
    const span = r.to - r.from;
    const d = document.createElement("span");
    const a = Math.max(from, r.from), b = Math.min(to, r.to);
    d.style.left = ((a - r.from) / span * 100) + "%";
    d.style.width = Math.max(0.1, (b - a) / span * 100) + "%";
    d.style.background = Object.hasOwn(stateColours, state) ? stateColours[state] : "var(--muted)";
    d.title = state + ": " + clock(from, true) + " – " + clock(to, true);
    d.dataset.state = state;
    return d;
  }
  async function intervals(type, r) {
    const q = new URLSearchParams({ device, agent, type, from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), limit: "10000" });
    const res = await fetch("/api/utilization?" + q.toString());
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error || res.statusText);
    // The intervals come a page at a time: follow the pages up to 50,000 intervals (the
    // shares always cover the whole window).
    let all = body.intervals, next = body.next;
    while (next && all.length < 50000) {
      q.set("cursor", next);
      const more = await fetch("/api/utilization?" + q.toString());
      if (!more.ok) break;
      const page = await more.json();
      all = all.concat(page.intervals);
      next = page.next;
    }
    return { intervals: all, shares: body.shares };
  }
  async function bands(r) {
    for (const [id, type] of [["timeline", "EXECUTION"], ["band-availability", "AVAILABILITY"], ["band-mode", "CONTROLLER_MODE"]]) {
      const track = document.getElementById(id);
      if (!track) continue;
      intervals(type, r).then(({ intervals: all, shares }) => {
        track.replaceChildren(...all.map((i) => segment(Date.parse(i.from), Date.parse(i.to), r, i.state)));
        track.title = "";
        if (type === "EXECUTION") {
          document.getElementById("shares").replaceChildren(...shares.map((s) => {
            const li = document.createElement("li");
            li.textContent = s.state + " " + (s.share * 100).toFixed(1) + " %";
            li.dataset.state = s.state;
            li.style.setProperty("--swatch", Object.hasOwn(stateColours, s.state) ? stateColours[s.state] : "var(--muted)");
            return li;
          }));
        }
      }).catch((e) => { track.replaceChildren(); track.title = e.message; track.closest(".band")?.classList.add("absent"); });
    }
    const cond = document.getElementById("band-condition");
    if (cond) {
      const q = new URLSearchParams({ device, agent, from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), limit: "10000" });
      const res = await fetch("/api/alarms?" + q.toString());
      if (res.ok) {
        const body = await res.json();
        // Faults drawn over Warnings.
        const episodes = body.episodes.slice().sort((a, b) => (a.level === "Fault") - (b.level === "Fault"));
        cond.replaceChildren(...episodes.map((e) => {
          const d = segment(Date.parse(e.began), e.ended ? Date.parse(e.ended) : Date.now(), r, e.level);
          d.title += " · " + e.type + (e.nativeCode ? " [" + e.nativeCode + "]" : "") + (e.message ? ": " + e.message : "");
          return d;
        }));
      }
    }
  }

  // Tools: the section as the server renders it (src/tools/view.rs), read again from this
  // page's own address: 11 s after this device's AssetChanged or AssetRemoved is heard
  // (the server reads the agent's assets at most every 10 s after one, MTConnect Part 2
  // ASSET_CHANGED), and every 30 s besides while the page is shown. One read at a time.
  const TOOLS_EVERY = 30000, AFTER_ASSET_CHANGE = 11000;
  let toolsTimer = null, toolsDue = 0, toolsHtml = null;
  async function reloadTools() {
    const shown = document.getElementById("tools");
    if (!shown || document.hidden) return;
    const res = await fetch(location.pathname + location.search);
    if (!res.ok) return;
    const fresh = new DOMParser().parseFromString(await res.text(), "text/html").getElementById("tools");
    if (!fresh || fresh.outerHTML === toolsHtml) return;
    toolsHtml = fresh.outerHTML;
    document.getElementById("tools")?.replaceWith(document.adoptNode(fresh));
    window.factorydash.ages();
  }
  // A read already due sooner is kept: changes heard more often than every 11 s do not
  // put it off.
  function scheduleTools(ms) {
    if (toolsTimer && toolsDue <= Date.now() + ms) return;
    clearTimeout(toolsTimer);
    toolsDue = Date.now() + ms;
    toolsTimer = setTimeout(() => {
      toolsTimer = null;
      reloadTools().catch(() => {}).finally(() => scheduleTools(TOOLS_EVERY));
    }, ms);
  }
  scheduleTools(TOOLS_EVERY);
  const ASSET_EVENTS = new Set(["ASSET_CHANGED", "ASSET_REMOVED"]);

  // Live: append each charted series' new values while following a window (redrawn at
  // most once a second).
  let dirty = false;
  document.addEventListener("factorydash:latest", (ev) => {
    if (ev.detail.items.some((o) => o.device === device && o.agent === agent && ASSET_EVENTS.has((known.get(itemKey({ device, agent, id: o.dataItemId })) || {}).type))) {
      scheduleTools(AFTER_ASSET_CHANGE);
    }
    if (view.custom || !plot) return;
    for (const o of ev.detail.items) {
      const l = loaded.find((l) => !l.error && l.s.device === o.device && l.s.agent === o.agent && l.s.id === o.dataItemId);
      if (!l) continue;
      const t = Date.parse(o.timestamp) / 1000;
      if (l.xs.length && t <= l.xs[l.xs.length - 1]) continue;
      const v = o.value === null ? null : Number(o.value);
      if (v !== null && Number.isNaN(v)) continue;
      l.xs.push(t);
      l.ys.push(v);
      dirty = true;
    }
  });
  setInterval(() => {
    if (view.custom || !plot) return;
    const r = range();
    for (const l of loaded) {
      while (l.xs.length && l.xs[0] < r.from / 1000) { l.xs.shift(); l.ys.shift(); }
    }
    if (dirty) { dirty = false; rethreshold(); plot.setData(chartData(r).data, false); }
    plot.setScale("x", { min: r.from / 1000, max: r.to / 1000 });
  }, 1000);

  for (const b of document.querySelectorAll("button.window")) {
    b.addEventListener("click", () => { view.window = b.dataset.window; view.custom = null; load(); });
  }
  const last = document.getElementById("last");
  if (last) {
    last.addEventListener("change", () => {
      if (windowSeconds(last.value.trim())) { view.window = last.value.trim(); view.custom = null; last.setCustomValidity(""); load(); }
      else { last.setCustomValidity("A number and m, h or d: 90m, 3h, 2d"); last.reportValidity(); }
    });
    if (!PRESETS[view.window]) last.value = view.window;
  }
  document.getElementById("chart-form").addEventListener("submit", (ev) => ev.preventDefault());
  document.getElementById("range-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const from = fromZoned(document.getElementById("from").value);
    const to = fromZoned(document.getElementById("to").value);
    if (Number.isNaN(from) || Number.isNaN(to) || to <= from) { note.textContent = "Choose a start before the end."; return; }
    view.custom = { from, to };
    load();
  });
  function add(s) {
    if (view.series.some((x) => itemKey(x) === itemKey(s))) return;
    if (view.series.length >= MAX_SERIES) { note.textContent = "At most " + MAX_SERIES + " series on one chart."; return; }
    view.series.push(s);
    load();
  }
  // Thresholds set by hand: the form under the chart, each listed with a remove button.
  function renderThresholds() {
    const tl = document.getElementById("threshold-list");
    if (!tl) return;
    tl.replaceChildren(...view.thresholds.map((t, i) => {
      const li = document.createElement("li");
      li.textContent = (t.label ? t.label + ": " : "threshold ") + number(t.value);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.title = "Remove this threshold";
      remove.setAttribute("aria-label", "Remove " + li.textContent);
      remove.addEventListener("click", () => { view.thresholds.splice(i, 1); writeView(); renderThresholds(); redraw(); });
      li.append(remove);
      return li;
    }));
    const box = document.getElementById("show-limits");
    if (box) box.checked = view.limits;
  }
  document.getElementById("threshold-form")?.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const valueEl = document.getElementById("th-value"), labelEl = document.getElementById("th-label");
    const value = Number(valueEl.value);
    if (valueEl.value.trim() === "" || !Number.isFinite(value)) { valueEl.setCustomValidity("A number"); valueEl.reportValidity(); return; }
    valueEl.setCustomValidity("");
    if (view.thresholds.length >= MAX_THRESHOLDS) { note.textContent = "At most " + MAX_THRESHOLDS + " thresholds on one chart."; return; }
    // "|" separates the value from the label in the address: not part of a label.
    view.thresholds.push({ value, label: labelEl.value.replace(/\|/g, "/").trim().slice(0, MAX_LABEL) });
    valueEl.value = ""; labelEl.value = "";
    writeView(); renderThresholds(); redraw();
  });
  document.getElementById("show-limits")?.addEventListener("change", (ev) => {
    view.limits = ev.target.checked;
    writeView(); redraw();
  });
  document.getElementById("add")?.addEventListener("click", () => { if (select.value) add({ device, agent, id: select.value }); });
  // Another device's Samples: the devices and their data items from /api/devices.
  const otherDevice = document.getElementById("other-device");
  const otherItem = document.getElementById("other-item");
  if (otherDevice && otherItem) {
    loadDevices().then((all) => {
      for (const { device: d } of all) {
        const o = document.createElement("option");
        o.value = JSON.stringify([d.agent, d.name]);
        o.textContent = d.name + (all.filter((x) => x.device.name === d.name).length > 1 ? " (" + d.agent + ")" : "");
        otherDevice.append(o);
      }
      otherDevice.dispatchEvent(new Event("change"));
    });
    otherDevice.addEventListener("change", () => {
      if (!otherDevice.value) return;
      const [ag, name] = JSON.parse(otherDevice.value);
      devicesLoaded.then((all) => {
        const d = all.find((x) => x.device.name === name && x.device.agent === ag);
        otherItem.replaceChildren(...(d ? d.device.dataItems : []).filter((i) => i.category === "SAMPLE").map((i) => {
          const o = document.createElement("option");
          o.value = i.id;
          o.textContent = (i.name || i.id) + " (" + i.type + (i.units ? ", " + i.units : "") + ")";
          return o;
        }));
      });
    });
    document.getElementById("add-other")?.addEventListener("click", () => {
      if (!otherDevice.value || !otherItem.value) return;
      const [ag, name] = JSON.parse(otherDevice.value);
      add({ device: name, agent: ag, id: otherItem.value });
    });
  }

  // A theme or a time zone switched: the chart again in its colours and clock.
  const redraw = () => { if (drawnRange && plot) draw(drawnRange); };
  document.addEventListener("factorydash:theme", redraw);
  document.addEventListener("factorydash:zone", () => { redraw(); bands(range()).catch(() => {}); });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
  window.addEventListener("resize", () => { if (plot) { plot.setSize({ width: width(), height: 340 }); alignBands(); } });

  // Sparklines: the last hour of every Sample, 60 points each, as steps; UNAVAILABLE
  // leaves a break.
  async function sparkline(canvas) {
    const to = Date.now();
    try {
      const s = await fetchSeries({ device, agent, id: canvas.dataset.item }, to - 3600 * 1000, to, 60);
      const pts = s.points.map((p) => [Date.parse(p[0]), p[1] == null ? null : Number(p[1])]);
      canvas.dataset.points = String(pts.length);
      const ys = pts.map((p) => p[1]).filter((y) => y != null);
      if (!ys.length) return;
      const min = Math.min(...ys);
      const span = Math.max(...ys) - min || 1;
      const g = canvas.getContext("2d");
      g.strokeStyle = "#0969da";
      g.beginPath();
      const px = (t) => ((t - (to - 3600 * 1000)) / (3600 * 1000)) * (canvas.width - 2) + 1;
      const py = (y) => canvas.height - 2 - ((y - min) / span) * (canvas.height - 4);
      let prev = null;
      pts.forEach(([t, y], i) => {
        if (prev != null) g.lineTo(px(t), py(prev));
        if (y == null) { prev = null; return; }
        if (prev == null) g.moveTo(px(t), py(y)); else g.lineTo(px(t), py(y));
        prev = y;
        if (i === pts.length - 1) g.lineTo(px(to), py(y));
      });
      g.stroke();
    } catch (e) {
      canvas.title = e.message;
    }
  }
  for (const c of document.querySelectorAll("canvas.spark")) sparkline(c);
  load();
})();
