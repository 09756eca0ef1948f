/* labledger dashboard: the compare page — overlaid curves (one colour per run), parallel
   coordinates and a scatter of the experiment's runs. */
"use strict";
(() => {
  const data = LL.readData("compare-data");
  if (!data) return;
  const runs = data.runs;
  const colour = (i) => LL.palette[i % LL.palette.length];
  document.querySelectorAll(".swatch").forEach((s) => { s.style.background = colour(Number(s.dataset.index)); });
  const histories = new Map();

  const keys = [];
  for (const r of runs) for (const k of r.metric_keys) if (!keys.includes(k)) keys.push(k);
  const shown = keys.slice(0, 16);

  async function loadCurves() {
    const jobs = [];
    runs.forEach((r) => {
      for (const k of r.metric_keys) {
        if (!shown.includes(k)) continue;
        const url = `/api/runs/${encodeURIComponent(r.id)}/metrics/${encodeURIComponent(k)}?max_points=1500`;
        jobs.push(LL.fetchJSON(url).then((h) => histories.set(r.id + "\u0000" + k, h)));
      }
    });
    await Promise.all(jobs);
    drawCurves();
  }

  function drawCurves() {
    const area = document.getElementById("chart-area");
    if (!area) return;
    const c = LL.controls();
    area.replaceChildren();
    for (const k of shown) {
      const div = LL.el("div", { class: "chart", "data-keys": k });
      area.append(div);
      const series = [];
      runs.forEach((r, i) => {
        const h = histories.get(r.id + "\u0000" + k);
        if (h) series.push({ label: `${r.label} ${r.name}`, color: colour(i), ...LL.xy(h, c.xKind) });
      });
      LL.lineChart(div, { title: k, series, xKind: c.xKind, log: c.log, smoothing: c.smoothing });
    }
  }

  /* -- the experiment's runs ---------------------------------------------------------------- */
  const points = data.points;
  const highlight = new Map(runs.map((r, i) => [r.id, i]));

  function scale(values) {
    const numeric = values.every((v) => v === null || v === undefined || typeof v === "number" || typeof v === "boolean");
    if (numeric) {
      const xs = values.map(LL.num).filter((v) => v !== null);
      let lo = Math.min(...xs), hi = Math.max(...xs);
      if (!xs.length) { lo = 0; hi = 1; }
      if (lo === hi) { lo -= 1; hi += 1; }
      return { at: (v) => { const x = LL.num(v); return x === null ? null : (x - lo) / (hi - lo); },
               ticks: [[0, lo], [1, hi]].map(([p, v]) => [p, Number(v.toPrecision(4)).toString()]) };
    }
    const cats = Array.from(new Set(values.filter((v) => v !== null && v !== undefined).map(String))).sort();
    const pos = (v) => (cats.length < 2 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1));
    return { at: (v) => (v === null || v === undefined ? null : pos(v)),
             ticks: cats.slice(0, 12).map((c) => [pos(c), c.length > 14 ? c.slice(0, 13) + "…" : c]) };
  }

  function metricOptions(select, chosen) {
    select.replaceChildren(...points.metrics.map((m) => LL.el("option", { value: m }, m)));
    if (chosen && points.metrics.includes(chosen)) select.value = chosen;
  }

  function defaultMetric() {
    const wanted = data.metric ? ["folds." + data.metric, "metrics." + data.metric] : [];
    return wanted.find((m) => points.metrics.includes(m)) ||
      points.metrics.find((m) => m.startsWith("folds.")) || points.metrics[0];
  }

  function parallel() {
    const root = document.getElementById("parallel-coords");
    const metric = document.getElementById("pc-metric").value;
    const dims = varying.slice(0, 8).map((p) => ({ name: p, get: (r) => r.params[p] }));
    dims.push({ name: metric, get: (r) => r.metrics[metric] });
    const width = Math.max(600, root.parentElement.clientWidth - 20), height = 320, top = 30, bottom = 40, side = 60;
    root.replaceChildren();
    root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    root.setAttribute("width", width);
    root.setAttribute("height", height);
    const scales = dims.map((d) => scale(points.runs.map(d.get)));
    const x = (i) => side + (dims.length < 2 ? 0 : (i * (width - 2 * side)) / (dims.length - 1));
    const y = (p) => top + (1 - p) * (height - top - bottom);
    const ms = scales[scales.length - 1];
    const lines = LL.svg("g", { class: "pc-lines" });
    const front = LL.svg("g", { class: "pc-highlight" });
    for (const r of points.runs) {
      const coords = [];
      dims.forEach((d, i) => { const p = scales[i].at(d.get(r)); if (p !== null) coords.push(`${x(i)},${y(p)}`); });
      if (coords.length < 2) continue;
      const h = highlight.get(r.id);
      const m = ms.at(r.metrics[metric]);
      const line = LL.svg("polyline", { points: coords.join(" "), class: h === undefined ? "pc-line" : "pc-line chosen",
        stroke: h === undefined ? `hsl(${210 - 150 * (m === null ? 0 : m)}, 60%, 50%)` : colour(h) });
      line.append(LL.svg("title", {}, r.name));
      (h === undefined ? lines : front).append(line);
    }
    root.append(lines, front);
    dims.forEach((d, i) => {
      root.append(LL.svg("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), class: "axis" }));
      root.append(LL.svg("text", { x: x(i), y: height - 12, class: "axis-label", "text-anchor": "middle" }, d.name));
      for (const [p, label] of scales[i].ticks) {
        root.append(LL.svg("text", { x: x(i) + 4, y: y(p) + 4, class: "tick" }, label));
      }
    });
    document.getElementById("pc-note").textContent =
      `${points.runs.length} runs${points.truncated ? " (the first ones)" : ""}; colour: ${metric}`;
  }

  function scatter() {
    const root = document.getElementById("scatter");
    const px = document.getElementById("scatter-x").value, my = document.getElementById("scatter-y").value;
    const width = Math.max(600, root.parentElement.clientWidth - 20), height = 300, pad = 50;
    root.replaceChildren();
    root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    root.setAttribute("width", width);
    root.setAttribute("height", height);
    const sx = scale(points.runs.map((r) => r.params[px])), sy = scale(points.runs.map((r) => r.metrics[my]));
    const x = (p) => pad + p * (width - 2 * pad), y = (p) => height - pad - p * (height - 2 * pad);
    root.append(LL.svg("line", { x1: pad, x2: width - pad, y1: height - pad, y2: height - pad, class: "axis" }));
    root.append(LL.svg("line", { x1: pad, x2: pad, y1: pad, y2: height - pad, class: "axis" }));
    for (const [p, label] of sx.ticks) root.append(LL.svg("text", { x: x(p), y: height - pad + 16, class: "tick", "text-anchor": "middle" }, label));
    for (const [p, label] of sy.ticks) root.append(LL.svg("text", { x: pad - 6, y: y(p) + 4, class: "tick", "text-anchor": "end" }, label));
    root.append(LL.svg("text", { x: width / 2, y: height - 8, class: "axis-label", "text-anchor": "middle" }, px || ""));
    root.append(LL.svg("text", { x: 8, y: pad - 12, class: "axis-label" }, my || ""));
    const front = [];
    for (const r of points.runs) {
      const a = sx.at(r.params[px]), b = sy.at(r.metrics[my]);
      if (a === null || b === null) continue;
      const h = highlight.get(r.id);
      const dot = LL.svg("circle", { cx: x(a), cy: y(b), r: h === undefined ? 3.5 : 6,
        class: h === undefined ? "dot" : "dot chosen", fill: h === undefined ? "#8aa" : colour(h) });
      dot.append(LL.svg("title", {}, `${r.name}: ${px}=${r.params[px]}, ${my}=${r.metrics[my]}`));
      (h === undefined ? root.append(dot) : front.push(dot));
    }
    root.append(...front);
  }

  const pcMetric = document.getElementById("pc-metric");
  metricOptions(pcMetric, defaultMetric());
  const sxSel = document.getElementById("scatter-x"), sySel = document.getElementById("scatter-y");
  const allParams = Array.from(new Set(points.runs.flatMap((r) => Object.keys(r.params)))).sort();
  const varying = points.params;  /* hyperparameters first, the most common first */
  const paramChoices = varying.concat(allParams.filter((p) => !points.params.includes(p)));
  sxSel.replaceChildren(...paramChoices.map((p) => LL.el("option", { value: p }, p)));
  metricOptions(sySel, defaultMetric());
  pcMetric.addEventListener("change", parallel);
  sxSel.addEventListener("change", scatter);
  sySel.addEventListener("change", scatter);
  LL.bindControls(drawCurves);
  parallel();
  scatter();
  loadCurves();
})();
