/* labledger dashboard: shared chart helpers (uPlot line charts, SVG fold charts). Every stored
   text reaches the page through textContent, never as HTML. */
"use strict";
const LL = (() => {
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                   "#17becf", "#bcbd22", "#7f7f7f"];
  const SVG = "http://www.w3.org/2000/svg";

  function num(v) {
    if (v === null || v === undefined) return null;
    const x = typeof v === "number" ? v : Number(v);
    return Number.isFinite(x) ? x : null;
  }

  async function fetchJSON(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(url + " answered " + r.status);
    return r.json();
  }

  function readData(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  /* Exponential moving average with bias correction (as TensorBoard's smoothing). */
  function smooth(values, weight) {
    if (!weight) return values;
    const out = new Array(values.length);
    let last = 0, debias = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * v;
      debias = debias * weight + (1 - weight);
      out[i] = last / debias;
    }
    return out;
  }

  /* One series' (x, y) from a history of the metric API for an x-axis kind; one point per x. */
  function xy(history, kind) {
    const xs = kind === "epoch" ? history.epoch : kind === "time" ? history.elapsed : history.step;
    const byX = new Map();
    for (let i = 0; i < xs.length; i++) {
      const x = num(xs[i]);
      if (x === null) continue;
      byX.set(x, num(history.value[i]));
    }
    const x = Array.from(byX.keys()).sort((a, b) => a - b);
    return { x, y: x.map((k) => byX.get(k)) };
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* A uPlot line chart in `div` of several series [{label, color, x, y}]; returns the plot. */
  function lineChart(div, spec) {
    if (div._plot) { div._plot.destroy(); div._plot = null; }
    div.replaceChildren();
    const series = spec.series.filter((s) => s.x.length > 0);
    let points = 0;
    const prepared = series.map((s) => {
      let y = spec.log ? s.y.map((v) => (v !== null && v > 0 ? v : null)) : s.y;
      y = smooth(y, spec.smoothing);
      points += y.filter((v) => v !== null).length;
      return [s.x, y];
    });
    div.dataset.points = String(points);
    if (!series.length) {
      div.append(el("p", { class: "empty" }, (spec.title || "") + ": no points on this axis"));
      return null;
    }
    const data = prepared.length === 1 ? prepared[0] : uPlot.join(prepared);
    const xLabel = { step: "step", epoch: "epoch", time: "seconds since start" }[spec.xKind] || "step";
    const opts = {
      title: spec.title,
      width: Math.max(320, Math.floor(div.clientWidth || 560)),
      height: 260,
      scales: { x: { time: false }, y: spec.log ? { distr: 3 } : {} },
      series: [{ label: xLabel }].concat(series.map((s) => ({
        label: s.label, stroke: s.color, width: 1.5, spanGaps: true,
        points: { show: s.x.length <= 60, size: 5, fill: s.color },
        value: (u, v) => (v === null || v === undefined ? "–" : Number(v.toPrecision(6)).toString()),
      }))),
      axes: [{ label: xLabel }, {}],
      legend: { live: true },
    };
    div._plot = new uPlot(opts, data, div);
    return div._plot;
  }

  function quantile(sorted, q) {
    const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  }

  /* A strip + box chart of one metric's fold values (null: a failed fold, drawn as a cross). */
  function foldChart(fold) {
    const width = 360, height = 200, left = 56, right = 12, top = 28, bottom = 24;
    const values = fold.values.map(num);
    const ok = values.filter((v) => v !== null).sort((a, b) => a - b);
    const root = svg("svg", { class: "fold-chart", "data-key": fold.key, "data-split": fold.split,
                              viewBox: `0 0 ${width} ${height}`, width, height });
    root.append(svg("text", { x: 8, y: 16, class: "chart-title" },
      `${fold.key} (${fold.split}) · ${ok.length} folds`));
    if (!ok.length) return root;
    let lo = ok[0], hi = ok[ok.length - 1];
    if (lo === hi) { lo -= Math.abs(lo) * 0.01 || 0.01; hi += Math.abs(hi) * 0.01 || 0.01; }
    const pad = (hi - lo) * 0.08;
    lo -= pad; hi += pad;
    const y = (v) => top + (height - top - bottom) * (1 - (v - lo) / (hi - lo));
    const cx = left + 90;
    for (const v of [lo + pad, hi - pad]) {
      root.append(svg("line", { x1: left - 4, x2: width - right, y1: y(v), y2: y(v), class: "grid-line" }));
      root.append(svg("text", { x: left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" },
        Number(v.toPrecision(4)).toString()));
    }
    const q1 = quantile(ok, 0.25), med = quantile(ok, 0.5), q3 = quantile(ok, 0.75);
    root.append(svg("line", { x1: cx, x2: cx, y1: y(ok[0]), y2: y(ok[ok.length - 1]), class: "whisker" }));
    root.append(svg("rect", { x: cx - 40, width: 80, y: y(q3), height: Math.max(1, y(q1) - y(q3)), class: "box" }));
    root.append(svg("line", { x1: cx - 40, x2: cx + 40, y1: y(med), y2: y(med), class: "median" }));
    if (fold.mean !== null && fold.mean !== undefined) {
      const m = num(fold.mean);
      root.append(svg("line", { x1: cx - 60, x2: cx + 60, y1: y(m), y2: y(m), class: "mean" }));
      root.append(svg("text", { x: cx + 62, y: y(m) + 4, class: "tick" },
        `mean ${Number(m.toPrecision(4))} ± ${Number((num(fold.std) || 0).toPrecision(2))}`));
    }
    values.forEach((v, i) => {
      const jitter = ((i * 37) % 60) - 30;
      if (v === null) {
        root.append(svg("text", { x: cx + jitter, y: top + 8, class: "failed-fold" }, "×"));
        return;
      }
      const c = svg("circle", { cx: cx + jitter, cy: y(v), r: 4, class: "fold-point" });
      c.append(svg("title", {}, `fold ${i}: ${v}`));
      root.append(c);
    });
    return root;
  }

  /* Metric keys grouped so that train/loss and val/loss share a chart. */
  function groupKeys(keys) {
    const groups = new Map();
    for (const k of keys) {
      let g = k.split("/").pop();
      g = g.replace(/^(train|training|val|valid|validation|test|eval)[_-]/i, "");
      g = g.replace(/^validation_\d+-/, "");
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(k);
    }
    return Array.from(groups.entries());
  }

  function bindControls(redraw) {
    for (const id of ["x-axis", "log-scale", "smoothing", "chart-mode"]) {
      const c = document.getElementById(id);
      if (c) c.addEventListener("input", () => {
        const out = document.getElementById("smoothing-value");
        const s = document.getElementById("smoothing");
        if (out && s) out.textContent = s.value;
        redraw();
      });
    }
  }

  function controls() {
    const x = document.getElementById("x-axis"), log = document.getElementById("log-scale"),
      s = document.getElementById("smoothing");
    return { xKind: x ? x.value : "step", log: !!(log && log.checked), smoothing: s ? Number(s.value) : 0 };
  }

  return { palette, num, fetchJSON, readData, smooth, xy, el, svg, lineChart, foldChart, groupKeys,
           bindControls, controls };
})();
