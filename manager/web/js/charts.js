// Charts, all drawn by uPlot (vendor/uplot): fast enough for 10,000 points and live updates.
// Each helper returns {update(...), destroy()} and resizes with its container.

import { color, fmtMetric, h } from "./util.js";

const uPlot = window.uPlot;

function sizeOf(el, height) {
  return { width: Math.max(200, el.clientWidth || 600), height };
}

function track(el, plot, height) {
  const observer = new ResizeObserver(() => {
    const size = sizeOf(el, height);
    if (size.width !== plot.width) plot.setSize(size);
  });
  observer.observe(el);
  return () => observer.disconnect();
}

/** Whole-number steps for counts (trial #, report #, step): never 1.5. */
const WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7];

function metricAxis(label) {
  return { label, size: 60, values: (_u, ticks) => ticks.map(fmtMetric) };
}

/**
 * Every trial's final metric (points) and the best so far (a step line) against trial number.
 * update(rows, optimizeMode): rows = [[sequenceId, trialId, value, time], ...].
 */
export function finalMetricChart(el, { height = 260 } = {}) {
  let plot = null;
  let stop = () => {};
  let ids = [];
  const onPick = [];
  function build(data) {
    const opts = {
      ...sizeOf(el, height),
      scales: { x: { time: false } },
      axes: [{ label: "trial #", incrs: WHOLE }, metricAxis("final metric")],
      cursor: { drag: { x: true, y: false }, points: { size: 7 } },
      legend: { live: true },
      series: [
        { label: "trial", value: (_u, v) => (v === null ? "–" : `#${v}`) },
        {
          label: "final metric",
          stroke: "rgba(47,111,222,.85)",
          fill: "rgba(47,111,222,.85)",
          paths: () => null,
          points: { show: true, size: 5, stroke: "rgba(47,111,222,.9)", fill: "rgba(47,111,222,.6)" },
          value: (_u, v) => fmtMetric(v),
        },
        { label: "best so far", stroke: "#e8702a", width: 2, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false }, spanGaps: true, value: (_u, v) => fmtMetric(v) },
      ],
    };
    plot = new uPlot(opts, data, el);
    stop = track(el, plot, height);
    plot.over.addEventListener("click", () => {
      const i = plot.cursor.idx;
      if (i !== null && i !== undefined && ids[i]) onPick.forEach((fn) => fn(ids[i]));
    });
  }
  return {
    onPick: (fn) => onPick.push(fn),
    update(rows, optimizeMode) {
      const sorted = [...rows].sort((a, b) => a[0] - b[0]);
      const xs = [], ys = [], best = [];
      ids = [];
      let running = null;
      for (const [seq, id, value] of sorted) {
        xs.push(seq);
        ys.push(value);
        ids.push(id);
        if (value !== null) {
          if (running === null) running = value;
          else running = optimizeMode === "minimize" ? Math.min(running, value) : Math.max(running, value);
        }
        best.push(running);
      }
      const data = [xs, ys, best];
      if (!plot) build(data);
      else plot.setData(data);
      el.dataset.points = String(xs.length);
    },
    destroy() {
      stop();
      plot?.destroy();
    },
  };
}

/**
 * Several named lines over a shared x; update({x, series: [{label, values}]}).
 * Used for intermediate curves and for candidate weights over steps.
 */
export function linesChart(el, { height = 240, xLabel = "step", yLabel = "", marker = false } = {}) {
  let plot = null;
  let stop = () => {};
  let signature = "";
  let markerX = null;
  const drawMarker = (u) => {
    if (markerX === null) return;
    const left = u.valToPos(markerX, "x", true);
    const { ctx } = u;
    ctx.save();
    ctx.strokeStyle = "rgba(29,35,48,.55)";
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(left, u.bbox.top);
    ctx.lineTo(left, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.restore();
  };
  function build(series, data) {
    plot?.destroy();
    stop();
    const opts = {
      ...sizeOf(el, height),
      scales: { x: { time: false } },
      axes: [{ label: xLabel, incrs: WHOLE }, metricAxis(yLabel)],
      legend: { live: true },
      series: [
        { label: xLabel },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color || color(i),
          width: s.width || 1.6,
          spanGaps: true,
          points: { show: data[0].length < 60 },
          value: (_u, v) => fmtMetric(v),
        })),
      ],
      hooks: marker ? { draw: [drawMarker] } : {},
    };
    plot = new uPlot(opts, data, el);
    stop = track(el, plot, height);
  }
  return {
    update({ x, series }) {
      const data = [x, ...series.map((s) => s.values)];
      const next = series.map((s) => s.label).join("\u0000");
      if (!plot || next !== signature) {
        signature = next;
        el.replaceChildren();
        build(series, data);
      } else {
        plot.setData(data);
      }
      el.dataset.series = String(series.length);
    },
    setMarker(x) {
      markerX = x;
      plot?.redraw(false);
    },
    clear(text) {
      stop();
      plot?.destroy();
      plot = null;
      signature = "";
      emptyChart(el, text);
    },
    destroy() {
      stop();
      plot?.destroy();
    },
  };
}

/**
 * Grouped bars over categories: update(categories, [{label, values, color}]).
 * Shares of each candidate among the top-k and among all trials.
 */
export function barsChart(el, { height = 190, yLabel = "share", percent = true } = {}) {
  let plot = null;
  let stop = () => {};
  let names = [];
  function build(groups, data) {
    plot?.destroy();
    stop();
    const n = groups.length;
    const width = 0.8 / n;
    const opts = {
      ...sizeOf(el, height),
      scales: { x: { time: false, range: (_u, min, max) => [min - 0.6, max + 0.6] }, y: { range: (_u, _min, max) => [0, Math.max(max, 0.05) * 1.1] } },
      axes: [
        { values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? names[t] ?? "" : "")), incrs: [1], rotate: 0, size: 40 },
        { label: yLabel, size: 56, values: (_u, ticks) => ticks.map((t) => (percent ? `${Math.round(t * 100)}%` : fmtMetric(t))) },
      ],
      legend: { live: true },
      cursor: { points: { show: false } },
      series: [
        { label: "candidate", value: (_u, v) => (v === null ? "–" : names[v] ?? "") },
        ...groups.map((g, i) => ({
          label: g.label,
          fill: g.color || color(i),
          stroke: g.color || color(i),
          paths: uPlot.paths.bars({
            size: [1, Infinity, 2],
            disp: {
              x0: { unit: 1, values: () => data[0].map((x) => x + (i - n / 2) * width) },
              size: { unit: 1, values: () => data[0].map(() => width * 0.92) },
            },
          }),
          points: { show: false },
          value: (_u, v) => (v === null ? "–" : percent ? `${(v * 100).toFixed(1)}%` : fmtMetric(v)),
        })),
      ],
    };
    plot = new uPlot(opts, data, el);
    stop = track(el, plot, height);
  }
  return {
    update(categories, groups) {
      names = categories;
      build(groups, [categories.map((_c, i) => i), ...groups.map((g) => g.values)]);
    },
    destroy() {
      stop();
      plot?.destroy();
    },
  };
}

export function emptyChart(el, text) {
  el.replaceChildren(h("div", { class: "chart-empty" }, text));
}
