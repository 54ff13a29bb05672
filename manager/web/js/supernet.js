// The super-net drawn by Cytoscape with the dagre layout (vendor/cytoscape*, loaded on first use).
//
// Graph format: manager/searchlog.py. A layer choice becomes a box holding one node per candidate,
// fed by whatever feeds the choice, and joined again in a small merge node; an input choice is a
// node whose candidate edges come from the nodes it may read. Weights restyle the candidates: the
// strongest of a key is drawn solid and labelled, the others fade by their weight relative to it.

import { fmtMetric } from "./util.js";

let loading = null;

function script(src) {
  return new Promise((resolve, reject) => {
    const el = document.createElement("script");
    el.src = src;
    el.onload = resolve;
    el.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(el);
  });
}

export function loadCytoscape() {
  if (!loading) {
    loading = script("/static/vendor/cytoscape/cytoscape.min.js")
      .then(() => script("/static/vendor/cytoscape-dagre/cytoscape-dagre.min.js"))
      .then(() => {
        window.cytoscape.use(window.cytoscapeDagre);
        return window.cytoscape;
      });
  }
  return loading;
}

const STYLE = [
  {
    selector: "node",
    style: {
      label: "data(label)",
      "font-size": 11,
      "text-valign": "center",
      "text-halign": "center",
      "text-wrap": "wrap",
      shape: "round-rectangle",
      width: (n) => Math.max(36, String(n.data("label") || "").length * 6.4 + 18),
      height: 24,
      "background-color": "#ffffff",
      "border-width": 1,
      "border-color": "#9aa3b5",
      color: "#1d2330",
    },
  },
  { selector: 'node[kind = "input"], node[kind = "output"]', style: { shape: "round-rectangle", "background-color": "#1d2330", color: "#fff", "border-width": 0 } },
  { selector: 'node[kind = "module"]', style: { "background-color": "#f1f3f7" } },
  {
    selector: "node:parent",
    style: {
      "text-valign": "top",
      "text-halign": "center",
      "background-color": "#f7f8fb",
      "background-opacity": 1,
      "border-style": "dashed",
      "border-color": "#b9c0cf",
      padding: 8,
      "font-weight": 600,
      color: "#4a5162",
    },
  },
  { selector: 'node[kind = "scope"]', style: { "background-color": "#fbfcfe", "border-style": "dotted" } },
  {
    selector: 'node[kind = "candidate"]',
    style: {
      "background-color": "#e8f0fd",
      "border-color": "#2f6fde",
      "border-width": 1.5,
      "font-size": 10,
      height: 18,
      width: (n) => (String(n.data("name")).length + 7) * 5.9 + 10,
    },
  },
  { selector: 'node[kind = "candidate"].top', style: { "background-color": "#2f6fde", color: "#fff", "font-weight": 600 } },
  { selector: 'node[kind = "merge"]', style: { shape: "ellipse", width: 10, height: 10, label: "", "background-color": "#5b6b8c", "border-width": 0 } },
  { selector: 'node[kind = "input_choice"]', style: { shape: "round-hexagon", "background-color": "#fff4e0", "border-color": "#c98a00", "border-width": 1.5 } },
  {
    selector: "edge",
    style: {
      width: 1.2,
      "curve-style": "bezier",
      "line-color": "#b7bfcc",
      "target-arrow-color": "#b7bfcc",
      "target-arrow-shape": "triangle",
      "arrow-scale": 0.7,
    },
  },
  { selector: "edge.weighted", style: { "line-color": "#2f6fde", "target-arrow-color": "#2f6fde" } },
  { selector: 'edge[kind = "input"].weighted', style: { "line-color": "#c98a00", "target-arrow-color": "#c98a00", label: "data(wlabel)", "font-size": 9, "text-background-color": "#fff", "text-background-opacity": 0.85 } },
  { selector: ".hidden", style: { display: "none" } },
];

/**
 * Cytoscape elements for a graph, and `slots`: one per choice node (a key placed in several cells
 * has several), each {key, type, candidates, nodes: [id per candidate], edges: [[ids] per candidate]}
 * so that weights can restyle every placement.
 */
function elements(graph) {
  const nodes = [];
  const edges = [];
  const slots = [];
  const slotOf = new Map(); // choice node id -> slot
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const entry = (id) => (byId.get(id)?.type === "layer_choice" ? byId.get(id).candidates.map((_c, i) => `${id}::${i}`) : [id]);
  const exit = (id) => (byId.get(id)?.type === "layer_choice" ? `${id}::out` : id);
  for (const n of graph.nodes) {
    const parent = n.parent && byId.has(n.parent) ? n.parent : undefined;
    if (n.type === "layer_choice") {
      nodes.push({ data: { id: n.id, label: n.key, kind: "box", parent, key: n.key } });
      const slot = { key: n.key, type: n.type, candidates: n.candidates, nodes: [], edges: [] };
      n.candidates.forEach((c, i) => {
        const id = `${n.id}::${i}`;
        nodes.push({ data: { id, label: c, name: c, kind: "candidate", parent: n.id, key: n.key, index: i } });
        slot.nodes.push(id);
        slot.edges.push([`${id}->out`]);
        edges.push({ data: { id: `${id}->out`, source: id, target: `${n.id}::out`, kind: "candidate" } });
      });
      nodes.push({ data: { id: `${n.id}::out`, label: "", kind: "merge", parent } });
      slots.push(slot);
      slotOf.set(n.id, slot);
    } else {
      nodes.push({ data: { id: n.id, label: n.type === "input_choice" ? n.key : n.label, kind: n.type, parent, key: n.key } });
      if (n.type === "input_choice") {
        const slot = { key: n.key, type: n.type, candidates: n.candidates, nodes: [], edges: n.candidates.map(() => []) };
        slots.push(slot);
        slotOf.set(n.id, slot);
      }
    }
  }
  const names = new Map();
  for (const n of graph.nodes) for (const name of [n.id, n.key, n.label]) if (name != null && !names.has(name)) names.set(name, n.id);
  let count = 0;
  for (const e of graph.edges) {
    const target = byId.get(e.target);
    const sourceId = exit(e.source);
    let candidate = -1;
    if (target?.type === "input_choice") {
      candidate = Number.isInteger(e.candidate) ? e.candidate : target.candidates.findIndex((c) => names.get(c) === e.source);
      if (candidate >= target.candidates.length) candidate = -1;
    }
    for (const t of entry(e.target)) {
      const id = `e${count++}`;
      edges.push({ data: { id, source: sourceId, target: t, kind: candidate >= 0 ? "input" : "flow", wlabel: "" } });
      if (candidate >= 0) slotOf.get(e.target).edges[candidate].push(id);
    }
  }
  return { elements: [...nodes, ...edges], slots };
}

function chosenIndices(decision, candidates) {
  let picked = decision && typeof decision === "object" && !Array.isArray(decision) ? decision._idx ?? decision._value : decision;
  picked = [].concat(picked ?? []);
  return picked.map((p) => (typeof p === "number" ? p : candidates.indexOf(p))).filter((i) => i >= 0 && i < candidates.length);
}

/**
 * The graph of one architecture: each layer choice keeps its chosen candidate, each input choice
 * only the edges from the inputs it chose. Laid out on its own, it is as small as the network.
 */
export function pruneGraph(graph, arch) {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const names = new Map();
  for (const n of graph.nodes) for (const name of [n.id, n.key, n.label]) if (name != null && !names.has(name)) names.set(name, n.id);
  const nodes = graph.nodes.map((n) => {
    if (n.type !== "layer_choice" || !arch || !(n.key in arch)) return n;
    return { ...n, candidates: chosenIndices(arch[n.key], n.candidates).map((i) => n.candidates[i]) };
  });
  const edges = graph.edges.filter((e) => {
    const target = byId.get(e.target);
    if (target?.type !== "input_choice" || !arch || !(target.key in arch)) return true;
    const candidate = Number.isInteger(e.candidate) ? e.candidate : target.candidates.findIndex((c) => names.get(c) === e.source);
    return candidate < 0 || chosenIndices(arch[target.key], target.candidates).includes(candidate);
  });
  return { ...graph, nodes, edges };
}

/**
 * Draw `graph` into `el`; returns {setWeights(weights), setArchitecture(arch, only), fit(), destroy()}.
 * weights: {key: [w per candidate]}; arch: {key: decision} (the chosen candidates get weight 1).
 */
export async function drawSupernet(el, graph, { onKey } = {}) {
  const cytoscape = await loadCytoscape();
  const { elements: eles, slots } = elements(graph);
  const layout = { name: "dagre", rankDir: "LR", nodeSep: 6, rankSep: 40, padding: 16, fit: false };
  const cy = cytoscape({
    container: el,
    elements: eles,
    style: STYLE,
    layout,
    minZoom: 0.1,
    maxZoom: 3,
    wheelSensitivity: 0.3,
    boxSelectionEnabled: false,
    autoungrabify: true,
  });
  el.dataset.nodes = String(cy.nodes().length);
  const fit = () => {
    cy.fit(undefined, 16);
    if (cy.zoom() > 1.25) {
      cy.zoom(1.25);
      cy.center();
    }
  };
  fit();
  cy.on("tap", "node", (event) => {
    const key = event.target.data("key");
    if (key && onKey) onKey(key);
  });

  function apply(weights, { only = false, values = true } = {}) {
    const tops = {};
    cy.batch(() => {
      for (const slot of slots) {
        const key = slot.key;
        const w = weights?.[key];
        const valid = Array.isArray(w) && w.length === slot.candidates.length;
        const top = valid ? Math.max(...w.map((x) => (typeof x === "number" ? x : 0)), 1e-12) : 1;
        slot.candidates.forEach((name, i) => {
          const value = valid && typeof w[i] === "number" ? w[i] : null;
          const rel = value === null ? 1 : Math.max(0, value) / top;
          const best = valid && value !== null && rel >= 0.999;
          const hide = only && valid && !best;
          if (best && !(tops[key] ||= []).includes(name)) tops[key].push(name);
          if (slot.type === "layer_choice") {
            const node = cy.getElementById(slot.nodes[i]);
            node.data("label", value === null || !values ? name : `${name}  ${fmtMetric(value)}`);
            node.style({ opacity: 0.2 + 0.8 * rel, "border-width": 1 + 2.5 * rel });
            node.toggleClass("top", best);
            node.toggleClass("hidden", hide);
            node.data("weight", value);
          }
          for (const id of slot.edges[i]) {
            const edge = cy.getElementById(id);
            edge.style({ opacity: 0.15 + 0.85 * rel, width: 0.8 + 3.5 * rel });
            edge.toggleClass("weighted", valid);
            edge.toggleClass("hidden", hide);
            if (slot.type === "input_choice") edge.data("wlabel", value === null || !values ? "" : fmtMetric(value));
          }
        });
      }
    });
    el.dataset.top = JSON.stringify(tops); // what is drawn strongest, per key (read by the tests)
  }

  return {
    cy,
    setWeights: (weights) => apply(weights),
    /** For a pruned graph: every candidate left is a chosen one. */
    markChosen() {
      const weights = {};
      for (const slot of slots) {
        // a pruned input choice keeps the edges of its chosen inputs only
        weights[slot.key] = slot.candidates.map((_c, i) => (slot.type === "input_choice" && !slot.edges[i].length ? 0 : 1));
      }
      apply(weights, { values: false });
    },
    setArchitecture(arch, only = true) {
      const weights = {};
      for (const slot of slots) {
        if (arch?.[slot.key] === undefined) continue;
        const picked = chosenIndices(arch[slot.key], slot.candidates);
        weights[slot.key] = slot.candidates.map((_c, i) => (picked.includes(i) ? 1 : 0));
      }
      apply(weights, { only, values: false });
    },
    fit,
    destroy: () => cy.destroy(),
  };
}
