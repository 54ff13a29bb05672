// Which ops matter: per choice key, the share of each candidate among the top-k trials against
// all trials, with the mean and best final metric of the trials that chose it; and the best
// architecture drawn as a cell graph.

import { api, query } from "./api.js";
import { barsChart } from "./charts.js";
import { drawSupernet, pruneGraph } from "./supernet.js";
import { decisionText, fmtMetric, h } from "./util.js";

export function architectureView(root, { experimentId }) {
  let top = 10;
  let charts = [];
  let graph = null;
  let graphKey = "";
  let destroyed = false;

  const topSelect = h(
    "select",
    { id: "top-k", onchange: (e) => { top = Number(e.target.value); tick(); } },
    [5, 10, 20, 50, 100].map((k) => h("option", { value: String(k), selected: k === top }, `top ${k}`)),
  );
  const summary = h("span", { class: "muted" });
  const keysEl = h("div", { class: "keys", id: "choice-stats" });
  const graphEl = h("div", { class: "graph", id: "best-graph" });
  const archEl = h("div", {});
  root.replaceChildren(
    h(
      "div",
      { class: "card" },
      h("div", { class: "row" }, h("h2", { style: { margin: 0 } }, "Which ops matter"), h("span", { class: "spacer" }), "compare", topSelect, "against all trials"),
      h("p", { class: "muted", style: { margin: "6px 0 0" } }, summary),
    ),
    keysEl,
    h(
      "div",
      { class: "card", style: { marginTop: "16px" } },
      h("h2", {}, "The best architecture ", h("span", { class: "muted" }, "(the chosen candidates only)")),
      h("div", { class: "graphbox", style: { height: "380px" } }, graphEl),
      archEl,
    ),
  );

  function keyCard(stat, trials) {
    const chartEl = h("div", { class: "chart" });
    const size = stat.candidates.length;
    const topN = Math.max(1, stats.topK);
    const shareTop = stat.top.map((c) => c / topN);
    const shareAll = stat.all.map((c) => c / Math.max(1, trials));
    const means = stat.mean.map((m) => (typeof m === "number" ? m : null));
    const better = stats.optimizeMode === "minimize" ? (a, b) => a < b : (a, b) => a > b;
    let bestMean = -1;
    means.forEach((m, i) => {
      if (m !== null && (bestMean < 0 || better(m, means[bestMean]))) bestMean = i;
    });
    const rows = stat.candidates.map((name, i) =>
      h(
        "tr",
        { class: i === bestMean ? "best" : "" },
        h("td", {}, name),
        h("td", {}, `${(shareTop[i] * 100).toFixed(0)}%`),
        h("td", {}, `${(shareAll[i] * 100).toFixed(0)}%`),
        h("td", {}, stat.all[i]),
        h("td", {}, fmtMetric(means[i])),
        h("td", {}, fmtMetric(stat.best[i])),
      ),
    );
    const card = h(
      "div",
      { class: "card", dataset: { key: stat.key } },
      h("h2", {}, stat.key, " ", h("span", { class: "muted" }, `${stat.type.replace("_", " ")} · ${size} candidates`)),
      chartEl,
      h(
        "table",
        { class: "stats" },
        h("thead", {}, h("tr", {}, ["candidate", `in top ${stats.topK}`, "in all", "trials", "mean metric", "best metric"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows),
      ),
    );
    return { card, chartEl, draw: (chart) => chart.update(stat.candidates, [
      { label: `top ${stats.topK}`, values: shareTop, color: "#e8702a" },
      { label: "all trials", values: shareAll, color: "#2f6fde" },
    ]) };
  }

  let stats = null;

  async function tick() {
    const [data, view] = await Promise.all([
      api.get(`/experiments/${experimentId}/choice-stats${query({ top })}`),
      api.get(`/experiments/${experimentId}/nas-view${query({ points: 2 })}`),
    ]);
    if (destroyed) return;
    stats = data;
    summary.textContent = data.keys.length
      ? `${data.trials.toLocaleString()} trials, ${data.scored.toLocaleString()} succeeded with a metric; the top ${data.topK} by final metric (${data.optimizeMode}). The candidate with the best mean metric is in bold.`
      : "The search space has no categorical choice yet.";
    charts.forEach((c) => c.destroy());
    charts = [];
    const cards = data.keys.map((stat) => keyCard(stat, data.trials));
    keysEl.replaceChildren(...cards.map((c) => c.card));
    for (const c of cards) {
      const chart = barsChart(c.chartEl, { height: 170 });
      c.draw(chart);
      charts.push(chart);
    }
    const pruned = view.architecture ? pruneGraph(view.graph, view.architecture) : view.graph;
    const nextKey = JSON.stringify(pruned);
    if (nextKey !== graphKey && pruned?.nodes?.length) {
      graphKey = nextKey;
      graph?.destroy();
      graph = await drawSupernet(graphEl, pruned);
      if (view.architecture) graph.markChosen();
    }
    archEl.replaceChildren(
      view.architecture
        ? h("p", {}, `Trial ${view.architectureTrial}: `, Object.entries(view.architecture).map(([k, v], i) => [i ? ", " : "", h("b", {}, k), " = ", decisionText(v)]))
        : h("p", { class: "muted" }, "No succeeded trial yet."),
    );
    root.dataset.loaded = "1";
  }

  return {
    tick,
    interval: 5000,
    destroy() {
      destroyed = true;
      charts.forEach((c) => c.destroy());
      graph?.destroy();
    },
  };
}
