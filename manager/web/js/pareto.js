// The Pareto front of a multi-objective experiment: every ranked trial on two objectives (two
// choosers when there are more), the front drawn bold and joined, dominated trials faded and
// trials that break a constraint marked in red; a click on a point opens its trial. Drawn with
// uPlot (vendor/uplot) like the other charts; the data is GET /experiments/{id}/pareto.

import { api } from "./api.js";
import { emptyChart } from "./charts.js";
import { fmtMetric, h, num } from "./util.js";

const uPlot = window.uPlot;
const PICK_PX = 12; // how near a click must be to a point to open it

/** A scale's range with 5% room on each side, so that no point sits on the frame. */
function padded(_u, min, max) {
  const room = max > min ? (max - min) * 0.05 : Math.abs(min) * 0.05 || 1;
  return [min - room, max + room];
}

/** Whether an experiment (its REST JSON) searches several objectives. */
export function isMultiObjective(exp) {
  const objectives = exp?.config?.objectives;
  return Array.isArray(objectives) && objectives.length >= 2;
}

/** The card: choosers, the chart and a note; refresh() re-reads the front (call it on each tick). */
export function paretoCard(root, { experimentId, openTrial, height = 280 }) {
  const chartEl = h("div", { class: "chart", id: "pareto-chart" });
  const xSelect = h("select", { id: "pareto-x", onchange: () => draw() });
  const ySelect = h("select", { id: "pareto-y", onchange: () => draw() });
  const choosers = h("div", { class: "row", hidden: true }, h("label", {}, "x ", xSelect), h("label", {}, "y ", ySelect));
  const note = h("div", { class: "legend-note", id: "pareto-note" });
  root.replaceChildren(
    h("h2", {}, "Pareto front ", h("span", { class: "muted" }, "the front joined, dominated trials faded, infeasible ones red; click a point for its trial")),
    choosers,
    chartEl,
    note,
  );
  let data = null;
  let plot = null;
  let stopResize = () => {};
  let shown = []; // the points drawn, in x order: [{id, x, y}]
  let signature = "";

  function objectiveOptions(objectives) {
    const names = objectives.map((o) => o.metric);
    const key = names.join("\u0000");
    if (key === signature) return;
    signature = key;
    const fill = (select, chosen) =>
      select.replaceChildren(...names.map((n) => h("option", { value: n, selected: n === chosen }, n)));
    fill(xSelect, names[0]);
    fill(ySelect, names[1]);
    choosers.hidden = names.length <= 2;
  }

  function label(metric) {
    const objective = data.objectives.find((o) => o.metric === metric);
    return objective ? `${metric} (${objective.mode === "minimize" ? "lower" : "higher"} is better)` : metric;
  }

  function draw() {
    if (!data) return;
    const xm = xSelect.value;
    const ym = ySelect.value;
    shown = data.points
      .map((p) => ({ id: p.id, x: num(p.values[xm]), y: num(p.values[ym]), rank: p.rank, feasible: p.feasible }))
      .filter((p) => p.x !== null && p.y !== null)
      .sort((a, b) => a.x - b.x || a.y - b.y);
    chartEl.dataset.x = xm;
    chartEl.dataset.y = ym;
    chartEl.dataset.points = String(shown.length);
    chartEl.dataset.front = String(shown.filter((p) => p.rank === 1).length);
    chartEl.dataset.infeasible = String(shown.filter((p) => !p.feasible).length);
    if (!shown.length) {
      plot?.destroy();
      plot = null;
      emptyChart(chartEl, "no succeeded trial with every objective's metric yet");
      return;
    }
    const xs = shown.map((p) => p.x);
    const only = (keep) => shown.map((p) => (keep(p) ? p.y : null));
    const series = [
      only((p) => p.rank === 1),
      only((p) => p.rank !== 1 && p.feasible),
      only((p) => !p.feasible),
    ];
    plot?.destroy();
    stopResize();
    chartEl.replaceChildren();
    const size = () => ({ width: Math.max(200, chartEl.clientWidth || 600), height });
    plot = new uPlot(
      {
        ...size(),
        scales: { x: { time: false, range: padded }, y: { range: padded } },
        axes: [
          { label: label(xm), values: (_u, ticks) => ticks.map(fmtMetric) },
          { label: label(ym), size: 60, values: (_u, ticks) => ticks.map(fmtMetric) },
        ],
        cursor: { drag: { x: false, y: false }, points: { show: false } },
        legend: { show: true, live: false },
        series: [
          { label: xm },
          { label: "front", stroke: "#e8702a", width: 2, spanGaps: true, points: { show: true, size: 9, fill: "#e8702a", stroke: "#e8702a" } },
          { label: "dominated", stroke: "rgba(47,111,222,.35)", paths: () => null, points: { show: true, size: 7, fill: "rgba(47,111,222,.25)", stroke: "rgba(47,111,222,.45)" } },
          { label: "infeasible", stroke: "#c62828", paths: () => null, points: { show: true, size: 7, width: 2, fill: "#fff", stroke: "#c62828" } },
        ],
      },
      [xs, ...series],
      chartEl,
    );
    plot.over.addEventListener("click", (event) => {
      const id = nearest(event);
      if (id) openTrial(id);
    });
    const observer = new ResizeObserver(() => {
      if (plot && size().width !== plot.width) plot.setSize(size());
    });
    observer.observe(chartEl);
    stopResize = () => observer.disconnect();
    // where a trial's point is on the page (for the browser tests, which cannot see the canvas)
    chartEl.pointOf = (id) => {
      const p = shown.find((q) => q.id === id);
      const box = plot.over.getBoundingClientRect();
      return p ? { x: box.left + plot.valToPos(p.x, "x"), y: box.top + plot.valToPos(p.y, "y") } : null;
    };
  }

  /** The trial whose point is nearest the click, within PICK_PX pixels. */
  function nearest(event) {
    const box = plot.over.getBoundingClientRect();
    const left = event.clientX - box.left;
    const top = event.clientY - box.top;
    let best = null;
    let bestDistance = PICK_PX;
    for (const p of shown) {
      const dx = plot.valToPos(p.x, "x") - left;
      const dy = plot.valToPos(p.y, "y") - top;
      const distance = Math.hypot(dx, dy);
      if (distance <= bestDistance) {
        bestDistance = distance;
        best = p.id;
      }
    }
    return best;
  }

  return {
    async refresh() {
      data = await api.get(`/experiments/${experimentId}/pareto`);
      objectiveOptions(data.objectives);
      note.textContent = `${data.front.length} on the front, ${data.dominated} dominated, ${data.infeasible} infeasible${data.constraints.length ? ` (constraints: ${data.constraints.join(", ")})` : ""}`;
      draw();
    },
    destroy() {
      stopResize();
      plot?.destroy();
    },
  };
}
