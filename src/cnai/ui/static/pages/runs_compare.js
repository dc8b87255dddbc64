// Compare runs: one metric's histories of the chosen runs on one chart, a labelled series
// per run, and a metric chooser. "#/runs/NAMESPACE/compare?ids=A,B&metric=KEY".
//
// Two requests, sent together when the metric is in the link: the runs (names and latest
// metrics, for the labels and the chooser) and every history of the metric at once
// (POST metrics:history). Without a metric, the one most of the runs have is drawn.
// body[data-chart-ready] is set once the chart is drawn.

import { useEffect, useMemo } from "preact/hooks";
import { ErrorBox, Table, html } from "../components.js";
import { LineChart, colour } from "../charts.js";
import { link } from "../router.js";
import { compareLink } from "./runs.js";
import { MAX_COMPARE, commonKeys, getTracking, hashQuery, histories, markReady, useLoad, valueText } from "./runs_data.js";

function loadRuns(namespace, ids, signal) {
  const query = { ids: ids.join(","), limit: MAX_COMPARE };
  return getTracking(namespace, "runs", query, signal).then((answer) => {
    const byId = new Map(answer.items.map((r) => [r.id, r]));
    return ids.filter((id) => byId.has(id)).map((id) => byId.get(id)); // in the link's order
  });
}

function MetricChooser({ namespace, ids, keys, metric }) {
  return html`<label>Metric <select id="compare-metric" value=${metric}
    onChange=${(e) => { location.hash = compareLink(namespace, ids, e.target.value); }}>
    ${keys.map((k) => html`<option value=${k}>${k}</option>`)}
  </select></label>`;
}

function Overlay({ runs, found, metric }) {
  const drawn = useMemo(() => {
    const series = runs
      .filter((r) => found[r.id] && found[r.id].steps.length)
      .map((r) => ({ label: r.name, id: r.id, steps: found[r.id].steps, values: found[r.id].values }));
    return { series, onDrawn: () => markReady("chartReady", true) };
  }, [runs, found]);
  useEffect(() => {
    if (!drawn.series.length) markReady("chartReady", true);
    return () => markReady("chartReady", false);
  }, [drawn]);
  if (!drawn.series.length) return html`<p class="muted empty" id="compare-chart">None of these runs logged ${metric}.</p>`;
  return html`<${LineChart} id="compare-chart" series=${drawn.series} height=${420} onDrawn=${drawn.onDrawn} />`;
}

function RunsLegend({ namespace, runs, found, metric }) {
  const drawnIds = runs.filter((r) => found && found[r.id] && found[r.id].steps.length).map((r) => r.id);
  const columns = [
    {
      title: "",
      cell: (r) => {
        const i = drawnIds.indexOf(r.id);
        return i >= 0 ? html`<span class="swatch" style=${`background: ${colour(i)}`}></span>` : "";
      },
    },
    { title: "Run", cell: (r) => html`<a href=${link("runs", namespace, r.id)}>${r.name}</a>` },
    { title: "Status", cell: (r) => r.status },
    { title: `Latest ${metric}`, cell: (r) => (r.metrics[metric] ? valueText(r.metrics[metric].value) : "—"), className: "num" },
    { title: "Points", cell: (r) => (found && found[r.id] ? String(found[r.id].steps.length) : ""), className: "num" },
  ];
  return html`<${Table} id="compare-runs" columns=${columns} rows=${runs} rowKey=${(r) => r.id} />`;
}

export function RunsCompare({ params }) {
  const { namespace } = params;
  const query = hashQuery();
  const ids = [...new Set((query.get("ids") || "").split(",").filter(Boolean))].slice(0, MAX_COMPARE);
  const asked = query.get("metric") || "";
  const runs = useLoad((signal) => loadRuns(namespace, ids, signal), [namespace, ids.join(",")]);
  const keys = useMemo(() => (runs.data ? commonKeys(runs.data, Infinity) : []), [runs.data]);
  const metric = asked || keys[0] || "";
  // With the metric in the link, its histories load alongside the runs.
  const found = useLoad(
    (signal) => (metric && ids.length ? histories(namespace, ids, metric, signal) : Promise.resolve(null)),
    [namespace, ids.join(","), metric],
  );
  const error = runs.error || found.error;
  const loading = !runs.data || (metric && !found.data);
  return html`<div class="page" id="compare-page">
    <p class="crumbs"><a href=${link("runs", namespace)}>Runs</a> / ${namespace}</p>
    <h1>Compare ${ids.length} run${ids.length === 1 ? "" : "s"}</h1>
    ${!ids.length ? html`<p class="muted">No runs chosen: check some on the <a href=${link("runs", namespace)}>runs page</a>.</p>` : ""}
    <section class="card" id="compare">
      <div class="toolbar">${keys.length ? html`<${MetricChooser} namespace=${namespace} ids=${ids} keys=${keys} metric=${metric} />` : ""}</div>
      <${ErrorBox} error=${error} />
      ${error ? "" : loading ? html`<p class="muted">Loading…</p>` : runs.data.length && metric
        ? html`<${Overlay} runs=${runs.data} found=${found.data} metric=${metric} />`
        : html`<p class="muted empty" id="compare-chart">${runs.data.length ? "These runs logged no metrics." : "None of these runs exist."}</p>`}
      ${runs.data && runs.data.length ? html`<${RunsLegend} namespace=${namespace} runs=${runs.data} found=${found.data} metric=${metric} />` : ""}
    </section>
  </div>`;
}
