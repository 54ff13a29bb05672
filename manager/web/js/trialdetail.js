// The trial drawer: status, parameters, why it ended, its intermediate curve, the tail of its
// stdout/stderr, and a kill button (two clicks: the first arms it for a few seconds).

import { api, query } from "./api.js";
import { linesChart } from "./charts.js";
import { badge, decisionText, fmtDuration, fmtMetric, fmtTime, h, num } from "./util.js";

const TAIL = 200;

export function trialDrawer(drawer, { experimentId, trialId, onClose, onChanged }) {
  let stream = "stdout";
  let trial = null;
  let armed = null;
  let destroyed = false;

  const title = h("h2", {});
  const status = h("span", {});
  const kill = h("button", { class: "danger", id: "kill-trial", onclick: () => killClicked() }, "Kill trial");
  const facts = h("div", { class: "kv" });
  const params = h("div", { class: "kv" });
  const chartEl = h("div", { class: "chart", id: "trial-curve" });
  const chart = linesChart(chartEl, { height: 200, xLabel: "report #", yLabel: "intermediate" });
  const logEl = h("pre", { class: "log mono", id: "trial-log" }, "loading…");
  const logTabs = h(
    "div",
    { class: "logtabs" },
    ["stdout", "stderr"].map((s) => h("button", { class: s === stream ? "active" : "", dataset: { stream: s }, onclick: () => switchLog(s) }, s)),
    h("a", { class: "muted", target: "_blank", rel: "noopener", href: "#", id: "log-full" }, "whole file"),
  );
  const message = h("div", { class: "problems" });

  drawer.replaceChildren(
    h(
      "div",
      { class: "row" },
      title,
      status,
      h("span", { class: "spacer" }),
      kill,
      h("button", { onclick: onClose, title: "close (Esc)" }, "✕"),
    ),
    message,
    h("h3", {}, "Trial"),
    facts,
    h("h3", {}, "Parameters"),
    params,
    h("h3", {}, "Intermediate results"),
    chartEl,
    h("h3", {}, "Output ", h("span", { class: "muted" }, `(last ${TAIL} lines)`)),
    logTabs,
    logEl,
  );
  drawer.hidden = false;
  drawer.dataset.trialId = trialId;

  function switchLog(s) {
    stream = s;
    for (const b of logTabs.querySelectorAll("button")) b.classList.toggle("active", b.dataset.stream === s);
    loadLog();
  }

  async function loadLog() {
    const path = `/experiments/${experimentId}/trials/${trialId}/log/${stream}`;
    logTabs.querySelector("#log-full").href = `/api/v1${path}`;
    try {
      const text = await api.text(`${path}${query({ tail: TAIL })}`);
      if (destroyed) return;
      const atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
      logEl.textContent = text || `(${stream} is empty)`;
      logEl.dataset.stream = stream;
      if (atBottom) logEl.scrollTop = logEl.scrollHeight;
    } catch (err) {
      logEl.textContent = `cannot read ${stream}: ${err.message}`;
    }
  }

  async function killClicked() {
    if (!armed) {
      kill.textContent = "Click again to kill";
      armed = setTimeout(() => {
        armed = null;
        kill.textContent = "Kill trial";
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    kill.disabled = true;
    kill.textContent = "Killing…";
    try {
      trial = await api.del(`/experiments/${experimentId}/trials/${trialId}`);
      message.textContent = "";
      onChanged?.();
      await tick();
    } catch (err) {
      message.textContent = err.message;
    }
    kill.textContent = "Kill trial";
  }

  function kv(el, pairs) {
    el.replaceChildren(...pairs.flatMap(([k, v]) => [h("div", {}, k), h("div", {}, v ?? "–")]));
  }

  async function tick() {
    let data;
    try {
      data = await api.get(`/experiments/${experimentId}/trials/${trialId}`);
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    if (destroyed) return;
    trial = data;
    title.textContent = `Trial #${data.sequenceId} · ${data.id}`;
    status.replaceChildren(badge(data.status));
    drawer.dataset.status = data.status;
    const active = data.status === "WAITING" || data.status === "RUNNING";
    kill.hidden = !active;
    kill.disabled = false;
    kv(facts, [
      ["final metric", fmtMetric(data.finalMetric)],
      ["started", fmtTime(data.startTime)],
      ["ended", fmtTime(data.endTime)],
      ["duration", fmtDuration(data.duration)],
      ["exit code", data.exitCode === null ? "–" : String(data.exitCode)],
      ["signal", data.signal === null ? "–" : String(data.signal)],
      ["reason", data.reason || (data.waitingReason ? `waiting: ${data.waitingReason}` : "–")],
      ...(data.stopStep != null ? [["stopped at", `intermediate result ${data.stopStep} (early-stopped)`]] : []),
      ["GPUs", data.gpus?.length ? data.gpus.join(", ") : "none"],
      ["folder", h("span", { class: "mono" }, data.trialDir)],
    ]);
    kv(params, Object.entries(data.parameters || {}).map(([k, v]) => [h("span", { class: "mono" }, k), decisionText(v)]));
    const points = data.intermediate || [];
    if (points.length) {
      chart.update({ x: points.map((_p, i) => i + 1), series: [{ label: "intermediate", values: points.map((p) => num(p.defaultValue)) }] });
    } else chart.clear("no intermediate results");
    await loadLog();
  }

  return {
    tick,
    isActive: () => !trial || trial.status === "WAITING" || trial.status === "RUNNING",
    destroy() {
      destroyed = true;
      clearTimeout(armed);
      chart.destroy();
      drawer.hidden = true;
      drawer.replaceChildren();
      delete drawer.dataset.trialId;
    },
  };
}
