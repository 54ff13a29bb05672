// The NAS view: the super-net graph, a slider over the logged steps that restyles each candidate
// by its weight at that step, the weights of one choice over the search, the metrics, and the
// exported (or best) architecture. The same view serves a one-shot search log (nasctl view-nas)
// and a classic experiment, whose "weights" are how often each candidate was chosen.

import { emptyChart, linesChart } from "./charts.js";
import { drawSupernet, pruneGraph } from "./supernet.js";
import { decisionText, h } from "./util.js";

const SKIP_FIELDS = new Set(["step", "epoch", "time", "timestamp", "iteration"]);
// Where a staged search is (P-DARTS), shown beside the step rather than drawn among the metrics.
const STAGE_FIELDS = new Set(["stage", "depth"]);

function numericSeries(items) {
  const names = [];
  const rows = items.map((item) => {
    const flat = {};
    for (const [k, v] of Object.entries(item)) if (typeof v === "number" && !SKIP_FIELDS.has(k)) flat[k] = v;
    if (item.metrics && typeof item.metrics === "object") {
      for (const [k, v] of Object.entries(item.metrics)) if (typeof v === "number" && !STAGE_FIELDS.has(k)) flat[k] = v;
    }
    for (const k of Object.keys(flat)) if (!names.includes(k)) names.push(k);
    return flat;
  });
  return names.slice(0, 8).map((name) => ({ label: name, values: rows.map((r) => (name in r ? r[name] : null)) }));
}

/** source: {load(): Promise<view>, interval: ms, stepText(item, view): string} */
export function nasView(root, source) {
  let view = null;
  let graphKey = "";
  let supernet = null;
  let index = 0;
  let follow = true;
  let mode = "weights";
  let key = null;
  let playing = null;
  let destroyed = false;

  const subtitle = h("span", { class: "muted" });
  const problems = h("div", { class: "problems" });
  const graphEl = h("div", { class: "graph", id: "supernet-graph" });
  const note = h("div", { class: "note" });
  const graphBox = h("div", { class: "graphbox" }, graphEl, note);
  const slider = h("input", { type: "range", min: "0", max: "0", value: "0", id: "step-slider", oninput: (e) => go(Number(e.target.value)) });
  const stepInfo = h("span", { class: "stepinfo muted", id: "step-info" });
  const play = h("button", { onclick: () => toggle(), title: "play the search" }, "▶ play");
  const modeSelect = h(
    "select",
    { id: "nas-mode", onchange: async (e) => { mode = e.target.value; await redraw(); render(); } },
    h("option", { value: "weights" }, "candidates' weights at the step"),
    h("option", { value: "architecture" }, "the architecture only"),
  );
  const keySelect = h("select", { class: "keypick", id: "nas-key", onchange: (e) => { key = e.target.value; renderCharts(); } });
  const weightsTitle = h("h2", {}, "Weights over the search");
  const weightsEl = h("div", { class: "chart", id: "weights-chart" });
  const metricsEl = h("div", { class: "chart", id: "metrics-chart" });
  const archEl = h("div", { id: "architecture" });
  const xLabel = source.xLabel || "step";
  const weightsChart = linesChart(weightsEl, { height: 260, xLabel, yLabel: "weight", marker: true });
  let metricsChart = null;

  root.replaceChildren(
    h(
      "div",
      { class: "card" },
      h("h2", {}, "Super-net ", subtitle),
      problems,
      h("div", { class: "row", style: { marginBottom: "8px" } }, "Show", modeSelect, h("span", { class: "spacer" }), h("button", { onclick: () => supernet?.fit() }, "fit")),
      graphBox,
      h("div", { class: "slider" }, play, slider, stepInfo),
    ),
    h(
      "div",
      { class: "grid2" },
      h("div", { class: "card" }, h("div", { class: "row" }, weightsTitle, h("span", { class: "spacer" }), keySelect), weightsEl),
      h("div", { class: "card" }, h("h2", {}, "Metrics"), metricsEl),
    ),
    h("div", { class: "card", style: { marginTop: "16px" } }, h("h2", {}, "Architecture"), archEl),
  );

  function items() {
    return view?.weights?.items || [];
  }

  function go(i) {
    const n = items().length;
    index = Math.max(0, Math.min(n - 1, i));
    follow = index === n - 1;
    render();
  }

  function toggle() {
    if (playing) {
      clearInterval(playing);
      playing = null;
      play.textContent = "▶ play";
      return;
    }
    if (index >= items().length - 1) index = 0;
    play.textContent = "❚❚ pause";
    playing = setInterval(() => {
      if (index >= items().length - 1) return toggle();
      go(index + 1);
    }, 120);
  }

  /** Draw the graph again when it (or the mode) changed: the architecture alone is laid out anew. */
  async function redraw() {
    const pruned = mode === "architecture" && view.architecture;
    const graph = pruned ? pruneGraph(view.graph, view.architecture) : view.graph;
    const nextKey = `${mode}:${JSON.stringify(graph)}`;
    if (nextKey === graphKey) return;
    graphKey = nextKey;
    supernet?.destroy();
    supernet = null;
    if (!graph?.nodes?.length) return;
    const size = graph.nodes.reduce((n, node) => n + 1 + (node.candidates?.length || 0), 0);
    graphBox.style.height = `${size > 90 ? 720 : 520}px`;
    supernet = await drawSupernet(graphEl, graph, {
      onKey: (k) => {
        key = k;
        renderCharts();
      },
    });
    if (pruned) supernet.markChosen();
  }

  function render() {
    const list = items();
    slider.max = String(Math.max(0, list.length - 1));
    slider.value = String(index);
    slider.disabled = list.length < 2;
    const item = list[index];
    stepInfo.textContent = item ? source.stepText(item, view, index, list.length) : "no steps logged yet";
    root.dataset.step = item ? String(item.step) : "";
    if (!supernet) return;
    if (mode !== "architecture" || !view.architecture) supernet.setWeights(item ? item.weights : null);
    weightsChart.setMarker(item ? item.step ?? index : null);
  }

  function renderCharts() {
    const list = items();
    const keys = (view.graph?.nodes || []).filter((n) => n.key).map((n) => n.key);
    const allKeys = [...new Set([...keys, ...Object.keys(list[0]?.weights || {})])];
    if (!key || !allKeys.includes(key)) key = allKeys[0] || null;
    keySelect.replaceChildren(...allKeys.map((k) => h("option", { value: k, selected: k === key }, k)));
    weightsTitle.textContent = key ? `Weights of ${key} over the search` : "Weights over the search";
    if (key && list.length) {
      const node = (view.graph?.nodes || []).find((n) => n.key === key);
      const width = list.find((it) => Array.isArray(it.weights?.[key]))?.weights[key].length || 0;
      const names = node?.candidates?.length === width ? node.candidates : Array.from({ length: width }, (_v, i) => String(i));
      weightsChart.update({
        x: list.map((it, i) => it.step ?? i),
        series: names.map((name, i) => ({ label: name, values: list.map((it) => (Array.isArray(it.weights?.[key]) ? it.weights[key][i] ?? null : null)) })),
      });
    } else weightsChart.clear("no weights logged yet");
    const metrics = view.metrics?.items || [];
    const series = numericSeries(metrics);
    if (series.length) {
      if (!metricsChart) {
        metricsEl.replaceChildren();
        metricsChart = linesChart(metricsEl, { height: 260, xLabel, yLabel: "" });
      }
      metricsChart.update({ x: metrics.map((m, i) => m.step ?? i), series });
    } else {
      metricsChart?.destroy();
      metricsChart = null;
      emptyChart(metricsEl, "no metrics logged yet");
    }
  }

  function renderArchitecture() {
    const arch = view.architecture;
    if (!arch) {
      archEl.replaceChildren(h("p", { class: "muted" }, view.source === "searchlog" ? "Not exported yet (architecture.json appears when the search ends)." : "No succeeded trial yet."));
      return;
    }
    const rows = Object.entries(arch).map(([k, v]) => h("tr", {}, h("td", { class: "mono" }, k), h("td", {}, decisionText(v))));
    archEl.replaceChildren(
      view.architectureTrial ? h("p", { class: "muted" }, `The best trial so far: ${view.architectureTrial}.`) : h("p", { class: "muted" }, "architecture.json, exported at the end of the search."),
      h("table", { class: "plain" }, h("thead", {}, h("tr", {}, h("th", {}, "key"), h("th", {}, "chosen"))), h("tbody", {}, rows)),
    );
  }

  async function tick() {
    if (destroyed) return;
    const next = await source.load();
    if (destroyed) return;
    view = next;
    subtitle.textContent = source.subtitle(view);
    problems.textContent = (view.problems || []).join(" · ");
    note.textContent = view.graph?.derived ? "drawn from the search space: keys in order, not the model's own wiring" : "";
    modeSelect.options[1].disabled = !view.architecture;
    if (!view.architecture && mode === "architecture") mode = modeSelect.value = "weights";
    await redraw();
    const n = items().length;
    if (follow || index > n - 1) index = Math.max(0, n - 1);
    renderCharts();
    renderArchitecture();
    render();
    root.dataset.loaded = "1";
  }

  return {
    tick,
    interval: source.interval,
    live: () => !view || !view.finished,
    destroy() {
      destroyed = true;
      if (playing) clearInterval(playing);
      supernet?.destroy();
      weightsChart.destroy();
      metricsChart?.destroy();
    },
  };
}
