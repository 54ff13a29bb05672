// One experiment: its status and limits (which the page can change), the final metric of every
// trial with the best so far, intermediate curves of chosen trials, and the trial table.
// Everything refreshes incrementally each second: new final results arrive through a cursor,
// and the table re-fetches only the page in view.

import { api, query } from "./api.js";
import { finalMetricChart, linesChart } from "./charts.js";
import { isMultiObjective, paretoCard } from "./pareto.js";
import { TrialTable } from "./trialtable.js";
import { badge, experimentDuration, fmtDuration, fmtMetric, fmtTime, h, num } from "./util.js";

const ACTIVE = new Set(["INITIALIZED", "RUNNING", "NO_MORE_TRIAL", "STOPPING"]);
const RESUMABLE = new Set(["STOPPED", "DONE", "ERROR"]);

/** The header card: facts, progress, limits and stop/resume. update(exp) redraws the facts. */
export function experimentHeader(root, { onChanged }) {
  let exp = null;
  const title = h("h2", { style: { fontSize: "18px", margin: 0 } });
  const status = h("span", { id: "exp-status" });
  const stop = h("button", { class: "danger", id: "stop-exp", onclick: () => act("stop") }, "Stop");
  const resume = h("button", { class: "primary", id: "resume-exp", onclick: () => act("resume") }, "Resume");
  const facts = h("div", { class: "facts" });
  const chips = h("div", { class: "chips" });
  const message = h("div", { class: "problems" });
  const failures = h("div", { class: "problems", id: "failure-reasons", hidden: true });
  const error = h("details", { hidden: true, id: "experiment-error" }, h("summary", {}, "error"), h("pre", { class: "log mono" }));
  const inputs = {
    trialConcurrency: h("input", { type: "number", min: "1", step: "1", id: "limit-concurrency" }),
    maxTrialNumber: h("input", { type: "number", min: "1", step: "1", id: "limit-trials", placeholder: "no limit" }),
    maxExperimentDuration: h("input", { type: "text", id: "limit-duration", placeholder: "no limit", size: 8, title: "seconds, or like 30m, 2h" }),
  };
  const limit = (field, label) =>
    h("label", {}, label, inputs[field], h("button", { id: `set-${field}`, onclick: () => setLimit(field) }, "Set"));
  root.replaceChildren(
    h(
      "div",
      { class: "card", id: "experiment-card" },
      h("div", { class: "row", style: { marginBottom: "12px" } }, title, status, h("span", { class: "spacer" }), stop, resume),
      facts,
      h("div", { class: "row", style: { marginTop: "12px" } }, chips),
      failures,
      h(
        "div",
        { class: "limits" },
        limit("trialConcurrency", "concurrency"),
        limit("maxTrialNumber", "max trials"),
        limit("maxExperimentDuration", "max duration"),
      ),
      message,
      error,
    ),
  );

  async function act(verb) {
    try {
      message.textContent = "";
      update(await api.post(`/experiments/${exp.id}/${verb}`));
      onChanged?.();
    } catch (err) {
      message.textContent = err.message;
    }
  }

  async function setLimit(field) {
    const text = inputs[field].value.trim();
    let value = text === "" ? null : field === "maxExperimentDuration" ? text : Number(text);
    if (field === "maxExperimentDuration" && text !== "" && /^\d+(\.\d+)?$/.test(text)) value = Number(text);
    try {
      message.textContent = "";
      update(await api.patch(`/experiments/${exp.id}`, { [field]: value }), true);
      onChanged?.();
    } catch (err) {
      message.textContent = err.message;
    }
  }

  function fact(label, value, extra) {
    return h("div", { class: "fact" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), extra);
  }

  function update(next, resetInputs = false) {
    const first = exp === null;
    exp = next;
    title.textContent = exp.name || exp.id;
    status.replaceChildren(badge(exp.status));
    root.dataset.status = exp.status;
    stop.hidden = !ACTIVE.has(exp.status) || exp.status === "STOPPING";
    resume.hidden = !RESUMABLE.has(exp.status);
    const counts = exp.trialCounts || {};
    const max = exp.maxTrialNumber;
    const progress = max ? Math.min(1, exp.trialsStarted / max) : null;
    const elapsed = experimentDuration(exp);
    const timeShare = exp.maxExperimentDuration && elapsed !== null ? Math.min(1, elapsed / exp.maxExperimentDuration) : null;
    facts.replaceChildren(
      fact("id", h("span", { class: "mono" }, exp.id)),
      fact("trials", `${exp.trialsStarted}${max ? ` / ${max}` : ""}${counts.EARLY_STOPPED ? ` (${counts.EARLY_STOPPED} early-stopped)` : ""}`, progress !== null ? h("div", { class: "progress" }, h("div", { style: { width: `${progress * 100}%` } })) : null),
      fact("duration", `${fmtDuration(elapsed)}${exp.maxExperimentDuration ? ` / ${fmtDuration(exp.maxExperimentDuration)}` : ""}`, timeShare !== null ? h("div", { class: "progress" }, h("div", { style: { width: `${timeShare * 100}%` } })) : null),
      fact("best metric", exp.bestTrialId ? h("a", { href: `#/experiments/${exp.id}/trial/${exp.bestTrialId}`, id: "best-metric" }, fmtMetric(exp.bestMetric)) : "–"),
      fact("tuner", h("span", { class: "small" }, `${exp.tuner} (${exp.optimizeMode})`)),
      fact("concurrency", String(exp.trialConcurrency)),
      fact("started", h("span", { class: "small" }, fmtTime(exp.startTime))),
    );
    chips.replaceChildren(
      ...Object.entries(counts)
        .filter(([, n]) => n > 0)
        .map(([s, n]) => h("span", { class: `badge ${s}` }, `${s} ${n}`)),
    );
    failures.hidden = !(exp.failureReasons || []).length;
    failures.replaceChildren(...failureLines(exp));
    if (first || resetInputs) {
      inputs.trialConcurrency.value = String(exp.trialConcurrency);
      inputs.maxTrialNumber.value = exp.maxTrialNumber === null ? "" : String(exp.maxTrialNumber);
      inputs.maxExperimentDuration.value = exp.maxExperimentDuration === null ? "" : String(exp.maxExperimentDuration);
    }
    error.hidden = !exp.error;
    // the first line says what happened (a traceback, if any, follows it): shown, not folded away
    const firstLine = (exp.error || "").split("\n")[0];
    error.querySelector("summary").textContent = `error: ${firstLine.length > 200 ? firstLine.slice(0, 199) + "…" : firstLine}`;
    error.querySelector("pre").textContent = exp.error || "";
  }

  return { update, get: () => exp };
}

/** Why trials failed (exp.failureReasons, commonest first, as `nasctl status` says it); each count opens one such trial. */
function failureLines(exp) {
  const reasons = exp.failureReasons || [];
  const lines = reasons.map((r) =>
    h(
      "div",
      { class: "failure-reason" },
      "failed: ",
      r.reason || "no reason recorded",
      " (",
      h("a", { href: `#/experiments/${exp.id}/trial/${r.trialId}`, title: "open one of these trials" }, String(r.count)),
      ")",
    ),
  );
  if (exp.otherFailures) lines.push(h("div", {}, `${exp.otherFailures} more failed for other reasons`));
  return lines;
}

/** The overview tab: charts and the trial table. */
export function overviewView(root, { experimentId, openTrial }) {
  let rows = new Map(); // trialId -> [seq, id, value]
  let cursor = 0;
  let exp = null;
  let selected = new Set();
  let bestIds = [];
  let bestFetched = 0;
  let curves = new Map(); // trialId -> {status, points}
  let destroyed = false;
  let firstPaint = false;

  const finalsEl = h("div", { class: "chart", id: "final-chart" });
  const curvesEl = h("div", { class: "chart", id: "curves-chart" });
  const curvesNote = h("div", { class: "legend-note" });
  const tableEl = h("div", { id: "trial-table" });
  const paretoEl = h("div", { class: "card", id: "pareto-card", hidden: true, style: { marginTop: "16px" } });
  let pareto = null;
  let paretoSeen = "";
  root.replaceChildren(
    h(
      "div",
      { class: "grid2" },
      h("div", { class: "card" }, h("h2", {}, "Final metric of every trial ", h("span", { class: "muted" }, "and the best so far; click a point for its trial")), finalsEl),
      h("div", { class: "card" }, h("h2", {}, "Intermediate results"), curvesEl, curvesNote),
    ),
    paretoEl,
    h("div", { class: "card", style: { marginTop: "16px" } }, h("h2", {}, "Trials"), tableEl),
  );
  const finals = finalMetricChart(finalsEl, { height: 250 });
  finals.onPick((id) => openTrial(id));
  const curveChart = linesChart(curvesEl, { height: 250, xLabel: "report #", yLabel: "intermediate" });
  const table = new TrialTable(tableEl, {
    experimentId,
    onOpen: (id) => openTrial(id),
    onSelect: (set) => {
      selected = set;
      refreshCurves(true);
    },
  });

  async function refreshFinals(experiment) {
    const data = await api.get(`/experiments/${experimentId}/final-metrics${query({ since: cursor })}`);
    exp = await experiment;
    if (destroyed) return;
    const fresh = cursor === 0 || data.trialIds.length > 0;
    data.trialIds.forEach((id, i) => {
      if (!rows.has(id)) rows.set(id, [data.sequenceIds[i], id, data.values[i]]);
    });
    cursor = data.next;
    if (fresh || !finalsEl.dataset.points) finals.update([...rows.values()], exp?.optimizeMode);
  }

  async function refreshCurves(force = false) {
    let ids = [...selected];
    if (!ids.length) {
      if (force || Date.now() - bestFetched > 5000) {
        bestIds = (await api.get(`/experiments/${experimentId}/best${query({ k: 5 })}`)).map((t) => t.id);
        bestFetched = Date.now();
      }
      ids = bestIds;
    }
    curvesNote.textContent = selected.size
      ? `${selected.size} trial(s) ticked in the table.`
      : "The 5 best trials; tick trials in the table to compare others.";
    const stale = ids.filter((id) => force || !curves.has(id) || ["WAITING", "RUNNING"].includes(curves.get(id).status));
    await Promise.all(
      stale.map(async (id) => {
        const t = await api.get(`/experiments/${experimentId}/trials/${id}`);
        curves.set(id, { status: t.status, seq: t.sequenceId, points: (t.intermediate || []).map((m) => num(m.defaultValue)) });
      }),
    );
    if (destroyed) return;
    const shown = ids.filter((id) => curves.has(id));
    const length = Math.max(0, ...shown.map((id) => curves.get(id).points.length));
    if (!length) {
      curveChart.clear(shown.length ? "no intermediate results yet" : "no trial to show yet");
      return;
    }
    curveChart.update({
      x: Array.from({ length }, (_v, i) => i + 1),
      series: shown.map((id) => ({ label: `#${curves.get(id).seq} ${id}`, values: Array.from({ length }, (_v, i) => curves.get(id).points[i] ?? null) })),
    });
  }

  /** The Pareto card of a multi-objective experiment, re-read when its trial counts change. */
  async function refreshPareto() {
    if (!isMultiObjective(exp)) return;
    if (!pareto) {
      paretoEl.hidden = false;
      pareto = paretoCard(paretoEl, { experimentId, openTrial });
    }
    const seen = JSON.stringify(exp.trialCounts);
    if (seen === paretoSeen) return;
    await pareto.refresh();
    paretoSeen = seen;
  }

  /** `experiment`: the experiment, or a promise of it (the first paint does not wait for it). */
  async function tick(experiment) {
    // the chart and the table first (what a person looks at), the curves of 5 trials after
    await Promise.all([refreshFinals(experiment), table.refresh()]);
    if (!firstPaint && !destroyed) {
      firstPaint = true;
      requestAnimationFrame(() => {
        document.body.dataset.painted = String(performance.now());
      });
    }
    await Promise.all([refreshCurves(), destroyed ? null : refreshPareto()]);
  }

  return {
    tick,
    table,
    setKeys: (keys) => table.setKeys(keys),
    setOpen: (id) => table.setOpen(id),
    destroy() {
      destroyed = true;
      finals.destroy();
      curveChart.destroy();
      pareto?.destroy();
    },
  };
}
