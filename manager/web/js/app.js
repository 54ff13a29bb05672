// The dashboard's entry: a hash router over the pages, and one ticker per page that refreshes it
// (every 0.75 s while an experiment runs, less often once it ended), paused while the tab is hidden.
//
//   #/                                  experiments
//   #/experiments/ID[/architecture|/supernet]
//   #/experiments/ID/trial/TRIAL        the overview with a trial's drawer open
//   #/nas                               the search log of `nasctl view-nas`

import { MODE, api, onRequestDone, query } from "./api.js";
import { architectureView } from "./architecture.js";
import { experimentHeader, overviewView } from "./experiment.js";
import { experimentsView } from "./experiments.js";
import { nasView } from "./nasview.js";
import { trialDrawer } from "./trialdetail.js";
import { h } from "./util.js";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const drawer = document.getElementById("drawer");
const banner = document.getElementById("banner");
const live = document.getElementById("live");

let page = null; // {key, destroy(), route(r)}
const ACTIVE = new Set(["INITIALIZED", "RUNNING", "NO_MORE_TRIAL", "STOPPING"]);
/** How often a running experiment's page asks for news: new trials and results show within a second. */
const LIVE_MS = 750;

onRequestDone((ok, error) => {
  live.classList.toggle("stale", !ok);
  if (ok) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  banner.textContent =
    error.status === 401
      ? "This page is no longer logged in: open the dashboard link that nasctl prints (it carries the token)."
      : error.message;
});

function parse(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (MODE === "searchlog" || parts[0] === "nas") return { page: "nas", key: "nas" };
  if (parts[0] === "experiments" && parts[1]) {
    const id = parts[1];
    if (parts[2] === "trial" && parts[3]) return { page: "experiment", key: `exp:${id}:overview`, id, tab: "overview", trial: parts[3] };
    const tab = ["architecture", "supernet"].includes(parts[2]) ? parts[2] : "overview";
    return { page: "experiment", key: `exp:${id}:${tab}`, id, tab, trial: null };
  }
  return { page: "experiments", key: "experiments" };
}

function setCrumbs(...items) {
  crumbs.replaceChildren(...items.flatMap((item, i) => (i ? [h("span", { class: "sep" }, "/"), item] : [item])));
}

/** Run `view.tick` now and then every `interval` ms (or view.interval), one call at a time. */
function ticker(tickFn, interval) {
  let timer = null;
  let stopped = false;
  let running = false;
  async function run() {
    if (stopped) return;
    if (document.hidden) {
      timer = setTimeout(run, 500);
      return;
    }
    if (!running) {
      running = true;
      try {
        await tickFn();
      } catch (err) {
        if (err?.status !== undefined) console.warn(err.message);
        else console.error(err);
      } finally {
        running = false;
      }
    }
    if (!stopped) timer = setTimeout(run, typeof interval === "function" ? interval() : interval);
  }
  run();
  return {
    now: () => {
      clearTimeout(timer);
      run();
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

// -- pages ------------------------------------------------------------------------------------

function experimentsPage() {
  setCrumbs(h("span", {}, "Experiments"));
  const view = experimentsView(main);
  const t = ticker(() => view.tick(), 1000);
  return { destroy: () => t.stop(), route() {} };
}

// A staged search (P-DARTS) records its stage and depth with each epoch's metrics; a step belongs
// to the stage of the first epoch end at or after it.
function stageText(view, step) {
  const end = (view.metrics?.items || []).find((m) => typeof m.metrics?.stage === "number" && (m.step ?? 0) >= step);
  if (!end) return "";
  const depth = typeof end.metrics.depth === "number" ? `, ${end.metrics.depth} cells` : "";
  return ` · stage ${end.metrics.stage}${depth}`;
}

function nasPage() {
  setCrumbs(h("span", {}, "NAS view"));
  const view = nasView(main, {
    load: () => api.get(`/searchlog${query({ points: 400 })}`),
    interval: 2000,
    subtitle: (v) => `${v.logdir} · ${v.weights.total.toLocaleString()} steps logged${v.finished ? ", finished" : ", searching"}`,
    stepText: (item, v, i, n) => `step ${item.step ?? i}${item.epoch !== undefined && item.epoch !== null ? ` · epoch ${item.epoch}` : ""}${stageText(v, item.step ?? i)} (${i + 1} of ${n})`,
  });
  const t = ticker(() => view.tick(), () => (view.live() ? 2000 : 10000));
  return { destroy: () => { t.stop(); view.destroy(); }, route() {} };
}

function experimentPage(route) {
  const id = route.id;
  const headerEl = h("div", {});
  const tabs = h("nav", { class: "tabs" });
  const body = h("div", { id: "tab-body" });
  main.replaceChildren(headerEl, tabs, body);
  let exp = null;
  let keys = null;
  let drawerView = null;
  let drawerTicker = null;
  let tabTicked = 0;
  const header = experimentHeader(headerEl, { onChanged: () => t.now() });

  tabs.replaceChildren(
    ...[
      ["overview", "Overview", ""],
      ["architecture", "Architecture", "/architecture"],
      ["supernet", "Super-net", "/supernet"],
    ].map(([tab, label, suffix]) =>
      h("a", { href: `#/experiments/${id}${suffix}`, class: tab === route.tab ? "active" : "", dataset: { tab } }, label),
    ),
  );

  const openTrial = (trialId) => (location.hash = `#/experiments/${id}/trial/${trialId}`);
  let view;
  if (route.tab === "architecture") view = architectureView(body, { experimentId: id });
  else if (route.tab === "supernet") {
    view = nasView(body, {
      load: () => api.get(`/experiments/${id}/nas-view${query({ points: 200 })}`),
      interval: 3000,
      xLabel: "trials",
      subtitle: (v) => `of ${v.title}: a candidate's weight is its share among the last ${v.window} trials`,
      stepText: (item, v, i, n) => `after trial ${item.step} of ${v.weights.total} (${i + 1} of ${n})`,
    });
  } else view = overviewView(body, { experimentId: id, openTrial });
  const interval = view.interval || LIVE_MS;

  async function loadKeys() {
    if (keys !== null || route.tab !== "overview") return;
    try {
      const space = await api.get(`/experiments/${id}/search-space`);
      keys = Object.keys(space);
      view.setKeys(keys);
    } catch (err) {
      if (err.status !== 409) throw err;
    }
  }

  // a finished experiment changes only when someone acts on it: its tab refreshes less often
  const tabInterval = () => (exp && !ACTIVE.has(exp.status) ? Math.max(interval, 5000) : interval);

  async function tick() {
    const experiment = api.get(`/experiments/${id}`).then((e) => {
      if (exp && exp.status !== e.status) tabTicked = 0; // it just ended or resumed: show it at once
      exp = e;
      header.update(e);
      setCrumbs(h("a", { href: "#/" }, "Experiments"), h("a", { href: `#/experiments/${id}` }, e.name || id), h("span", {}, route.tab));
      return e;
    });
    const due = Date.now() - tabTicked >= tabInterval() - 50;
    if (due) tabTicked = Date.now();
    await Promise.all([experiment, loadKeys(), due ? view.tick(experiment) : null]);
    if (!tabTicked) {
      tabTicked = Date.now();
      await view.tick(exp);
    }
  }
  const t = ticker(tick, () => (exp && !ACTIVE.has(exp.status) ? 2000 : LIVE_MS));

  function closeDrawer() {
    drawerTicker?.stop();
    drawerView?.destroy();
    drawerView = drawerTicker = null;
    view.setOpen?.(null);
  }

  function route_(r) {
    if (r.trial === (drawerView && drawer.dataset.trialId)) return;
    closeDrawer();
    if (r.trial) {
      drawerView = trialDrawer(drawer, {
        experimentId: id,
        trialId: r.trial,
        onClose: () => (location.hash = `#/experiments/${id}`),
        onChanged: () => t.now(),
      });
      drawerTicker = ticker(() => drawerView.tick(), () => (drawerView?.isActive() ? 1000 : 5000));
      view.setOpen?.(r.trial);
    }
  }
  route_(route);

  return {
    route: route_,
    destroy() {
      t.stop();
      closeDrawer();
      view.destroy();
    },
  };
}

// -- the router ---------------------------------------------------------------------------------

function show() {
  const route = parse(location.hash);
  if (page && page.key === route.key) {
    page.route(route);
    return;
  }
  page?.destroy();
  main.replaceChildren();
  const made = route.page === "nas" ? nasPage() : route.page === "experiment" ? experimentPage(route) : experimentsPage();
  page = { key: route.key, ...made };
}

window.addEventListener("hashchange", show);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !drawer.hidden) {
    const route = parse(location.hash);
    if (route.trial) location.hash = `#/experiments/${route.id}`;
  }
});
show();
