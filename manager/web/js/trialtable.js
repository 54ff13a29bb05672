// The trial table: sorted, filtered and paged by the server, drawn virtually.
// Only the rows in view exist in the DOM, and only the pages of 50 that cover them are fetched,
// so 10,000 trials scroll and sort as fast as 10. Each refresh() re-fetches the pages in view,
// which is how new trials and results appear live.

import { api, query } from "./api.js";
import { badge, decisionText, fmtDuration, fmtMetric, fmtTime, h } from "./util.js";

const PAGE = 50;
const OVERSCAN = 8;
const MAX_SELECTED = 10;

const BASE_COLUMNS = [
  { id: "select", title: "", width: "34px" },
  { id: "sequenceId", title: "#", width: "64px", sort: "sequenceId", cls: "num" },
  { id: "id", title: "trial", width: "72px", cls: "mono" },
  { id: "status", title: "status", width: "128px", sort: "status" },
  { id: "finalMetric", title: "final metric", width: "128px", sort: "finalMetric", cls: "num" },
  { id: "duration", title: "duration", width: "100px", sort: "duration", cls: "num" },
  { id: "startTime", title: "started", width: "150px", sort: "startTime" },
];

export class TrialTable {
  constructor(el, { experimentId, keys = [], onOpen = () => {}, onSelect = () => {} }) {
    this.el = el;
    this.experimentId = experimentId;
    this.onOpen = onOpen;
    this.onSelect = onSelect;
    this.sort = "sequenceId";
    this.order = "desc";
    this.status = "";
    this.total = 0;
    this.pages = new Map();
    this.inflight = new Set();
    this.generation = 0;
    this.selected = new Set();
    this.openId = null;
    this.rowHeight = 30;
    this.fetchTimer = null;
    this.version = 0;
    this.rowEls = new Map(); // row index -> {key, el}: only rows that changed are rebuilt
    this.setKeys(keys);
    this.build();
  }

  setKeys(keys) {
    this.keys = keys;
    this.columns = [...BASE_COLUMNS, ...keys.map((k) => ({ id: `key:${k}`, title: k, width: "minmax(90px, 1fr)", key: k }))];
    if (this.head) this.build();
  }

  build() {
    const template = this.columns.map((c) => c.width).join(" ");
    this.template = template;
    this.filter = h(
      "select",
      { class: "status-filter", onchange: (e) => this.setStatus(e.target.value), title: "filter by status" },
      h("option", { value: "" }, "every status"),
      ["WAITING", "RUNNING", "SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"].map((s) =>
        h("option", { value: s, selected: s === this.status }, s),
      ),
    );
    this.count = h("span", { class: "muted" });
    this.head = h("div", { class: "thead", style: { gridTemplateColumns: template } });
    this.spacer = h("div", { class: "spacer" });
    this.scroller = h("div", { class: "scroller", onscroll: () => this.schedule() }, this.spacer);
    this.footer = h("div", { class: "footer" }, "Click a row for its detail and logs; tick up to 10 trials to compare their intermediate curves.");
    this.root = h("div", { class: "ttable", dataset: { total: "0", version: "0" } }, this.head, this.scroller, this.footer);
    this.rowEls = new Map();
    this.el.replaceChildren(h("div", { class: "row", style: { marginBottom: "8px" } }, this.filter, this.count), this.root);
    this.renderHead();
    this.renderRows();
  }

  renderHead() {
    this.head.replaceChildren(
      ...this.columns.map((c) => {
        const sorted = c.sort && c.sort === this.sort;
        const arrow = sorted ? (this.order === "desc" ? " ▼" : " ▲") : "";
        return h(
          "div",
          {
            class: `${c.sort ? "sortable" : ""} ${sorted ? "sorted" : ""} ${c.cls || ""}`,
            title: c.sort ? `sort by ${c.title} (on the server)` : c.key ? `chosen for ${c.key}` : "",
            dataset: { col: c.id },
            onclick: c.sort ? () => this.setSort(c.sort) : undefined,
          },
          c.title + arrow,
        );
      }),
    );
  }

  setSort(sort) {
    if (this.sort === sort) this.order = this.order === "desc" ? "asc" : "desc";
    else {
      this.sort = sort;
      this.order = sort === "finalMetric" || sort === "sequenceId" ? "desc" : "asc";
    }
    this.reset();
  }

  setStatus(status) {
    this.status = status;
    this.reset();
  }

  reset() {
    this.generation += 1;
    this.pages.clear();
    this.inflight.clear();
    this.scroller.scrollTop = 0;
    this.renderHead();
    this.renderRows();
    this.fetchVisible(true);
  }

  visibleRange() {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 440;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - OVERSCAN);
    const last = Math.min(Math.max(0, this.total - 1), Math.ceil((top + height) / this.rowHeight) + OVERSCAN);
    return [first, last];
  }

  visiblePages() {
    const [first, last] = this.visibleRange();
    const pages = [];
    for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) pages.push(p);
    return pages.length ? pages : [0];
  }

  schedule() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = null;
        this.renderRows();
      });
    }
    clearTimeout(this.fetchTimer);
    this.fetchTimer = setTimeout(() => this.fetchVisible(false), 40);
  }

  /** Fetch the pages in view: all of them when `force` (live refresh), else only missing ones. */
  async fetchVisible(force) {
    const generation = this.generation;
    const wanted = this.visiblePages().filter((p) => force || !this.pages.has(p));
    await Promise.all(wanted.map((p) => this.fetchPage(p, generation)));
  }

  async fetchPage(page, generation) {
    const tag = `${generation}:${page}`;
    if (this.inflight.has(tag)) return;
    this.inflight.add(tag);
    try {
      const params = query({ sort: this.sort, order: this.order, status: this.status, offset: page * PAGE, limit: PAGE });
      const data = await api.get(`/experiments/${this.experimentId}/trials${params}`);
      if (generation !== this.generation) return;
      this.pages.set(page, data.items);
      if (data.total !== this.total) {
        this.total = data.total;
        for (const p of [...this.pages.keys()]) if (p * PAGE >= this.total && this.total > 0) this.pages.delete(p);
      }
      this.version += 1;
      this.renderRows();
    } catch (err) {
      if (err.name !== "AbortError") console.warn("trial page", err);
    } finally {
      this.inflight.delete(tag);
    }
  }

  refresh() {
    return this.fetchVisible(true);
  }

  /** Trials currently loaded (for charts that want their status). */
  loaded() {
    return [...this.pages.values()].flat();
  }

  renderRows() {
    this.spacer.style.height = `${Math.max(1, this.total) * this.rowHeight}px`;
    this.scroller.style.height = `${Math.min(440, Math.max(3, this.total) * this.rowHeight + 2)}px`;
    this.count.textContent = `${this.total.toLocaleString()} trial${this.total === 1 ? "" : "s"}${this.status ? ` ${this.status}` : ""}`;
    this.root.dataset.total = String(this.total);
    if (this.total === 0) {
      this.rowEls.clear();
      this.spacer.replaceChildren(h("div", { class: "trow placeholder", style: { top: "0px", gridTemplateColumns: "1fr" } }, h("div", {}, this.pages.size ? "no trials yet" : "loading…")));
      this.root.dataset.version = String(this.version);
      return;
    }
    if (!this.rowEls.size) this.spacer.replaceChildren();
    const [first, last] = this.visibleRange();
    for (const [i, row] of this.rowEls) {
      if (i < first || i > last) {
        row.el.remove();
        this.rowEls.delete(i);
      }
    }
    for (let i = first; i <= last; i++) {
      const page = this.pages.get(Math.floor(i / PAGE));
      const trial = page ? page[i % PAGE] : undefined;
      const key = trial
        ? `${trial.id}|${trial.status}|${trial.finalMetric}|${trial.duration}|${this.selected.has(trial.id)}|${this.openId === trial.id}`
        : "·";
      const old = this.rowEls.get(i);
      if (old && old.key === key) continue;
      const el = trial ? this.row(trial, i) : this.placeholder(i);
      if (old) old.el.replaceWith(el);
      else this.spacer.append(el);
      this.rowEls.set(i, { key, el });
    }
    this.root.dataset.version = String(this.version);
  }

  placeholder(i) {
    return h(
      "div",
      { class: "trow placeholder", style: { top: `${i * this.rowHeight}px`, gridTemplateColumns: this.template } },
      this.columns.map(() => h("div", {}, "·")),
    );
  }

  row(trial, i) {
    const cells = this.columns.map((c) => {
      switch (c.id) {
        case "select":
          return h(
            "div",
            {},
            h("input", {
              type: "checkbox",
              checked: this.selected.has(trial.id),
              title: "compare its intermediate curve",
              onclick: (e) => {
                e.stopPropagation();
                this.toggle(trial.id, e.target);
              },
            }),
          );
        case "sequenceId":
          return h("div", { class: "num" }, trial.sequenceId);
        case "id":
          return h("div", { class: "mono" }, trial.id);
        case "status":
          // an early stop shows the step it came at, and the assessor's reason on hover
          return trial.status === "EARLY_STOPPED" && trial.stopStep != null
            ? h("div", { title: trial.reason || "" }, badge(trial.status), h("span", { class: "muted small" }, ` @${trial.stopStep}`))
            : h("div", {}, badge(trial.status));
        case "finalMetric":
          return h("div", { class: "num c-metric" }, fmtMetric(trial.finalMetric));
        case "duration":
          return h("div", { class: "num" }, fmtDuration(trial.duration));
        case "startTime":
          return h("div", {}, fmtTime(trial.startTime));
        default: {
          const text = decisionText(trial.parameters?.[c.key]);
          return h("div", { title: text }, text);
        }
      }
    });
    return h(
      "div",
      {
        class: `trow ${this.openId === trial.id ? "selected" : ""}`,
        style: { top: `${i * this.rowHeight}px`, gridTemplateColumns: this.template },
        dataset: { trialId: trial.id, seq: String(trial.sequenceId), status: trial.status },
        onclick: () => this.onOpen(trial.id),
      },
      cells,
    );
  }

  toggle(id, box) {
    if (this.selected.has(id)) this.selected.delete(id);
    else if (this.selected.size >= MAX_SELECTED) {
      box.checked = false;
      return;
    } else this.selected.add(id);
    this.onSelect(new Set(this.selected));
  }

  setOpen(id) {
    this.openId = id;
    this.renderRows();
  }
}
