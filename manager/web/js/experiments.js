// The list of experiments: status, progress against the budget, best metric, duration; stop/resume.

import { api } from "./api.js";
import { badge, experimentDuration, fmtDuration, fmtMetric, fmtTime, h } from "./util.js";

const ACTIVE = new Set(["INITIALIZED", "RUNNING", "NO_MORE_TRIAL"]);
const RESUMABLE = new Set(["STOPPED", "DONE", "ERROR"]);

export function experimentsView(root) {
  const body = h("tbody", {});
  const message = h("div", { class: "problems" });
  root.replaceChildren(
    h(
      "div",
      { class: "card" },
      h("h2", {}, "Experiments"),
      message,
      h(
        "table",
        { class: "plain", id: "experiments" },
        h("thead", {}, h("tr", {}, ["name", "id", "status", "progress", "best metric", "duration", "tuner", "created", ""].map((t) => h("th", {}, t)))),
        body,
      ),
    ),
  );

  async function act(event, id, verb) {
    event.stopPropagation();
    try {
      message.textContent = "";
      await api.post(`/experiments/${id}/${verb}`);
      await tick();
    } catch (err) {
      message.textContent = err.message;
    }
  }

  function progress(exp) {
    const max = exp.maxTrialNumber;
    const share = max ? Math.min(1, exp.trialsStarted / max) : null;
    const done = Object.entries(exp.trialCounts || {})
      .filter(([s]) => s !== "WAITING" && s !== "RUNNING")
      .reduce((a, [, n]) => a + n, 0);
    return h(
      "div",
      {},
      h("div", { class: "muted", style: { fontSize: "12px" } }, `${done} done, ${exp.trialCounts?.RUNNING || 0} running${max ? ` of ${max}` : ""}`),
      share !== null ? h("div", { class: "progress" }, h("div", { style: { width: `${share * 100}%` } })) : null,
    );
  }

  async function tick() {
    const list = await api.get("/experiments");
    const open = (id) => (location.hash = `#/experiments/${id}`);
    body.replaceChildren(
      ...(list.length
        ? list.map((exp) =>
            h(
              "tr",
              { class: "link", dataset: { id: exp.id }, onclick: () => open(exp.id) },
              h("td", {}, h("a", { href: `#/experiments/${exp.id}` }, exp.name || "(unnamed)")),
              h("td", { class: "mono" }, exp.id),
              h("td", {}, badge(exp.status)),
              h("td", {}, progress(exp)),
              h("td", { class: "num" }, fmtMetric(exp.bestMetric)),
              h("td", { class: "num" }, fmtDuration(experimentDuration(exp))),
              h("td", {}, exp.tuner),
              h("td", {}, fmtTime(exp.createdAt)),
              h(
                "td",
                {},
                ACTIVE.has(exp.status) ? h("button", { class: "danger", onclick: (e) => act(e, exp.id, "stop") }, "Stop") : null,
                RESUMABLE.has(exp.status) ? h("button", { onclick: (e) => act(e, exp.id, "resume") }, "Resume") : null,
              ),
            ),
          )
        : [h("tr", {}, h("td", { colspan: "9", class: "muted" }, "No experiment yet: nasctl create --config exp.yaml"))]),
    );
    root.dataset.loaded = "1";
  }

  return { tick, interval: 1000, destroy() {} };
}
