// Run: its fields, params, tags, the latest value of each metric, one chart per metric
// (step on x; every history loaded at once, each thinned to CHART_POINTS by the API) and
// its artifacts. body[data-chart-ready] is set once every chart is drawn.

import { useEffect, useMemo } from "preact/hooks";
import { ErrorBox, Status, Table, html } from "../components.js";
import { LineChart } from "../charts.js";
import { link } from "../router.js";
import { CHART_POINTS, duration, getTracking, markReady, startText, useLoad, valueText } from "./runs_data.js";

function loadRun(namespace, id, signal) {
  const run = getTracking(namespace, `runs/${encodeURIComponent(id)}`, {}, signal);
  const groups = getTracking(namespace, "rungroups", {}, signal).catch(() => ({ items: [] }));
  return Promise.all([run, groups]).then(([r, g]) => ({ run: r, groups: g.items }));
}

function loadHistories(namespace, run, signal) {
  const keys = Object.keys(run.metrics).sort();
  const one = (key) =>
    getTracking(namespace, `runs/${encodeURIComponent(run.id)}/metrics/${key.split("/").map(encodeURIComponent).join("/")}`,
      { maxPoints: CHART_POINTS }, signal);
  return Promise.all(keys.map(one)).then((found) => keys.map((key, i) => ({ key, ...found[i] })));
}

function KeyValues({ id, values, empty }) {
  const rows = Object.entries(values).sort((a, b) => a[0].localeCompare(b[0]));
  const columns = [
    { title: "Key", cell: (r) => r[0] },
    { title: "Value", cell: (r) => r[1], className: "wrap" },
  ];
  return html`<${Table} id=${id} columns=${columns} rows=${rows} rowKey=${(r) => r[0]} empty=${empty} />`;
}

function Charts({ namespace, run }) {
  const charts = useLoad((signal) => loadHistories(namespace, run, signal), [run.id]);
  // One series list and one countdown per answer, so a re-render redraws nothing.
  const drawing = useMemo(() => {
    if (!charts.data) return null;
    let left = charts.data.length;
    const onDrawn = () => {
      left -= 1;
      if (left === 0) markReady("chartReady", true);
    };
    const series = charts.data.map((h) => [{ label: h.key, steps: h.steps, values: h.values }]);
    return { series, onDrawn };
  }, [charts.data]);
  useEffect(() => {
    if (charts.data && !charts.data.length) markReady("chartReady", true);
    return () => markReady("chartReady", false);
  }, [charts.data]);
  if (charts.error) return html`<${ErrorBox} error=${charts.error} />`;
  if (!charts.data) return html`<p class="muted">Loading…</p>`;
  if (!charts.data.length) return html`<p class="muted empty">No metrics.</p>`;
  return html`<div class="charts">
    ${charts.data.map(
      (h, i) => html`<figure class="chart-box" data-metric=${h.key} key=${h.key}>
        <figcaption>${h.key}</figcaption>
        <${LineChart} series=${drawing.series[i]} height=${200} onDrawn=${drawing.onDrawn} />
      </figure>`,
    )}
  </div>`;
}

function Artifacts({ namespace, id }) {
  const files = useLoad((signal) => getTracking(namespace, `runs/${encodeURIComponent(id)}/artifacts`, {}, signal), [id]);
  if (files.error) return html`<${ErrorBox} error=${files.error} />`;
  if (!files.data) return html`<p class="muted">Loading…</p>`;
  const columns = [
    { title: "Path", cell: (f) => (f.isDir ? `${f.path}/` : f.path) },
    { title: "Size", cell: (f) => (f.isDir ? "" : String(f.size)), className: "num" },
  ];
  return html`<${Table} id="run-artifacts" columns=${columns} rows=${files.data.files} rowKey=${(f) => f.path} empty="No artifacts." />`;
}

function Fields({ run, groups }) {
  const group = groups.find((g) => g.id === run.groupId);
  const fields = [
    ["Status", html`<${Status} phase=${run.status} />`],
    ["Experiment", group ? group.name : String(run.groupId)],
    ["Start", startText(run.startTime)],
    ["Duration", duration(run)],
    ["Id", html`<code>${run.id}</code>`],
    ["Owner", run.owner && run.owner.kind ? `${run.owner.kind}/${run.owner.name}` : "—"],
  ];
  return html`<dl class="fields" id="run-fields">
    ${fields.map(([k, v]) => html`<div class="field" data-field=${k}><dt>${k}</dt><dd>${v}</dd></div>`)}
  </dl>`;
}

export function RunDetail({ params }) {
  const { namespace, id } = params;
  const loaded = useLoad((signal) => loadRun(namespace, id, signal), [namespace, id]);
  if (loaded.error) return html`<div class="page" id="run-page"><${ErrorBox} error=${loaded.error} /></div>`;
  if (!loaded.data) return html`<div class="page muted" id="run-page">Loading…</div>`;
  const { run, groups } = loaded.data;
  const latest = Object.fromEntries(
    Object.entries(run.metrics).map(([k, m]) => [k, `${valueText(m.value)} (step ${m.step})`]),
  );
  return html`<div class="page" id="run-page" data-run=${run.id}>
    <p class="crumbs"><a href=${link("runs", namespace)}>Runs</a> / ${namespace}</p>
    <h1 id="run-name">${run.name}</h1>
    <section class="card"><${Fields} run=${run} groups=${groups} /></section>
    <section class="card" id="run-metrics"><h2>Metrics</h2>
      <${KeyValues} id="run-latest" values=${latest} empty="No metrics." />
      <${Charts} namespace=${namespace} run=${run} />
    </section>
    <section class="card" id="run-params"><h2>Params</h2><${KeyValues} id="run-params-table" values=${run.params} empty="No params." /></section>
    <section class="card" id="run-tags"><h2>Tags</h2><${KeyValues} id="run-tags-table" values=${run.tags} empty="No tags." /></section>
    <section class="card" id="run-artifacts-card"><h2>Artifacts</h2><${Artifacts} namespace=${namespace} id=${run.id} /></section>
  </div>`;
}
