/* labledger dashboard: the run page's charts, fold charts and live updates. */
"use strict";
(() => {
  const data = LL.readData("run-data");
  if (!data) return;
  const runId = data.run_id;
  /* A running run is polled this often; with the writer's 1 s flush a point shows within ~1.6 s. */
  const POLL_MS = 500;
  const histories = new Map();
  let keys = data.metrics.slice();
  let status = data.status;

  function maxPoints() {
    const area = document.getElementById("chart-area");
    return Math.max(200, Math.min(5000, 2 * Math.floor((area && area.clientWidth) || 1000)));
  }

  async function load(key) {
    const url = `/api/runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(key)}?max_points=${maxPoints()}`;
    histories.set(key, await LL.fetchJSON(url));
  }

  function draw() {
    const area = document.getElementById("chart-area");
    if (!area) return;
    const c = LL.controls();
    const present = keys.filter((k) => histories.has(k));
    const modeSelect = document.getElementById("chart-mode");
    const mode = modeSelect ? modeSelect.value : "grouped";
    const groups = mode === "single" ? (present.length ? [["all metrics", present]] : [])
      : mode === "separate" ? present.map((k) => [k, [k]]) : LL.groupKeys(present);
    const wanted = new Set(groups.map(([g]) => g));
    for (const div of Array.from(area.querySelectorAll("div.chart"))) {
      if (!wanted.has(div.dataset.group)) { if (div._plot) div._plot.destroy(); div.remove(); }
    }
    groups.forEach(([group, members]) => {
      let div = Array.from(area.querySelectorAll("div.chart")).find((d) => d.dataset.group === group);
      if (!div) {
        div = LL.el("div", { class: "chart", "data-group": group });
        area.append(div);
      }
      div.dataset.keys = members.join(",");
      const series = members.map((k, i) => ({ label: k, color: LL.palette[i % LL.palette.length],
                                               ...LL.xy(histories.get(k), c.xKind) }));
      LL.lineChart(div, { title: group, series, xKind: c.xKind, log: c.log, smoothing: c.smoothing });
    });
  }

  function cell(text, numeric) {
    return LL.el("td", numeric ? { class: "num" } : {}, text);
  }

  function shown(v) {
    const x = LL.num(v);
    return x === null ? (v === null || v === undefined ? "–" : String(v)) : Number(x.toPrecision(4)).toString();
  }

  /* The metric summary table, refreshed from the run endpoint while the run is live. */
  function summary(metrics) {
    const body = document.querySelector("#metric-summary tbody");
    if (!body) return;
    body.replaceChildren(...Object.entries(metrics).map(([k, s]) => {
      const row = LL.el("tr");
      row.append(cell(k), cell(shown(s.last), true), cell(shown(s.min), true), cell(shown(s.max), true),
                 cell(String(s.count), true), cell(String(s.last_step), true));
      return row;
    }));
  }

  function drawFolds() {
    const area = document.getElementById("fold-area");
    if (!area) return;
    area.replaceChildren(...data.folds.map((f) => LL.foldChart(f)));
  }

  async function loadAll() {
    await Promise.all(keys.map(load));
    draw();
  }

  async function poll() {
    try {
      const run = await LL.fetchJSON(`/api/runs/${encodeURIComponent(runId)}?brief=1`);  // no analyses: polled every second
      keys = Object.keys(run.metrics);
      const changed = keys.filter((k) => !histories.has(k) || histories.get(k).points !== run.metrics[k].count);
      if (changed.length) {
        await Promise.all(changed.map(load));
        draw();
        summary(run.metrics);
      }
      status = run.overview.status;
      const s = document.getElementById("status");
      if (s) { s.textContent = status; s.className = "status status-" + status; }
      const d = document.getElementById("duration");
      if (d && run.overview.duration !== null) d.textContent = Number(run.overview.duration).toFixed(1) + "s";
      const live = document.getElementById("live-indicator");
      if (status !== "running") {
        if (live) live.textContent = "run ended: " + status;
        return;
      }
      if (live) live.dataset.updated = new Date().toISOString();
    } catch (e) {
      const live = document.getElementById("live-indicator");
      if (live) live.textContent = "● live — waiting for the server";
    }
    setTimeout(poll, POLL_MS);
  }

  LL.bindControls(draw);
  drawFolds();
  let resizeTimer = null;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(draw, 200); });
  loadAll().then(() => { if (status === "running") setTimeout(poll, POLL_MS); });
})();
