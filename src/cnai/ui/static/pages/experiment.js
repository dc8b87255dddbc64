// One experiment: its search (space, objective, algorithm, budget), progress, the best
// trial, every trial with its parameters and objective (the best one highlighted), a
// scatter of the objective against each parameter, and the events about the experiment
// and its trials. All live: trials appear and fill in as they run.

import { Age, EventsTable, Section, Status, Table, html } from "../components.js";
import { useLiveList } from "../live.js";
import { Scatter, short } from "../plots.js";
import { link } from "../router.js";
import { bestValue, objectiveText, trialsText } from "./experiments.js";

const EXPERIMENT_LABEL = "cnai.io/experiment-name"; // keep in sync with cnai.tuning.api

function Field({ label, children }) {
  return html`<div class="field"><dt>${label}</dt><dd data-field=${label}>${children}</dd></div>`;
}

function paramsText(params) {
  return Object.entries(params || {})
    .map(([k, v]) => `${k}=${short(v)}`)
    .join(", ");
}

function spaceText(p) {
  if (p.type === "categorical") return `${p.name}: ${(p.values || []).map(String).join(" | ")}`;
  const range = `${p.name}: ${p.type} ${short(p.min)}…${short(p.max)}`;
  return range + (p.step ? ` step ${short(p.step)}` : "") + (p.log ? " (log)" : "");
}

function Summary({ exp }) {
  const spec = exp.spec;
  const s = exp.status || {};
  const algo = spec.algorithm || {};
  const best = s.bestTrial;
  return html`<dl class="fields" id="experiment-summary">
    <${Field} label="Status"><${Status} phase=${s.phase} />${s.reason ? ` ${s.reason}` : ""}</${Field}>
    ${s.message ? html`<${Field} label="Message">${s.message}</${Field}>` : ""}
    <${Field} label="Objective">${objectiveText(spec)}${spec.objective.target != null ? ` · target ${short(spec.objective.target)}` : ""}</${Field}>
    <${Field} label="Algorithm">${algo.name || "tpe"}${algo.seed != null ? ` (seed ${algo.seed})` : ""}</${Field}>
    <${Field} label="Early stopping">${spec.earlyStopping ? spec.earlyStopping.name : "none"}</${Field}>
    <${Field} label="Trials">${trialsText(exp)}</${Field}>
    <${Field} label="Running / succeeded / pruned / failed">${`${s.running || 0} / ${s.succeeded || 0} / ${s.pruned || 0} / ${s.failed || 0}`}</${Field}>
    <${Field} label="Parallel trials">${String(spec.parallelTrials ?? 1)}</${Field}>
    <${Field} label="Best value">${bestValue(exp) || "none yet"}</${Field}>
    <${Field} label="Best trial">${best ? `${best.name} (${paramsText(best.params)})` : "none yet"}</${Field}>
    <${Field} label="Search space">${(spec.parameters || []).map((p) => html`<div>${spaceText(p)}</div>`)}</${Field}>
    <${Field} label="Created"><${Age} time=${exp.metadata.creationTimestamp} /> ago</${Field}>
    ${s.completionTime ? html`<${Field} label="Finished">${s.completionTime}</${Field}>` : ""}
  </dl>`;
}

/** Names of the best trial, and of the Pareto front for several objectives. */
function bestNames(exp) {
  const s = exp.status || {};
  return new Set([...(s.bestTrial ? [s.bestTrial.name] : []), ...(s.paretoFront || []).map((t) => t.name)]);
}

function Trials({ exp, trials }) {
  const best = bestNames(exp);
  const metrics = [exp.spec.objective.metric, ...(exp.spec.objective.additional || []).map((m) => m.metric)];
  const columns = [
    { title: "#", cell: (t) => String(t.spec.number), className: "num" },
    { title: "Trial", cell: (t) => html`${t.metadata.name}${best.has(t.metadata.name) ? html` <span class="badge" title="best trial">best</span>` : ""}` },
    ...(exp.spec.parameters || []).map((p) => ({
      title: p.name,
      cell: (t) => short((t.spec.params || {})[p.name]),
      className: p.type === "categorical" ? "" : "num",
    })),
    ...metrics.map((metric, i) => ({
      title: metric,
      cell: (t) => short(((t.status || {}).values || [])[i]),
      className: "num",
    })),
    { title: "Status", cell: (t) => html`<${Status} phase=${(t.status || {}).phase} />` },
    {
      title: "Pruned",
      cell: (t) =>
        (t.status || {}).phase === "Pruned"
          ? html`yes${t.status.message ? html` <span class="muted">${t.status.message}</span>` : ""}`
          : "",
      className: "wrap",
    },
    {
      title: "Run",
      cell: (t) => ((t.status || {}).runId ? html`<a href=${link("runs", t.metadata.namespace, t.status.runId)}>run</a>` : ""),
    },
    { title: "Age", cell: (t) => html`<${Age} time=${t.metadata.creationTimestamp} />` },
  ];
  return html`<${Table} id="trials-table" columns=${columns} rows=${trials}
    rowKey=${(t) => t.metadata.name} rowClass=${(t) => (best.has(t.metadata.name) ? "best" : "")}
    empty="No trials yet." />`;
}

function Plots({ exp, trials }) {
  const best = bestNames(exp);
  const metric = exp.spec.objective.metric;
  const done = trials.filter((t) => ((t.status || {}).values || []).length);
  if (!done.length) return html`<p class="muted">No trial has a value yet.</p>`;
  return html`<div class="plots">
    ${(exp.spec.parameters || []).map((p) => {
      const points = done.map((t) => ({
        key: t.metadata.name,
        x: (t.spec.params || {})[p.name],
        y: t.status.values[0],
        highlight: best.has(t.metadata.name),
        title: `${t.metadata.name}: ${p.name}=${short(t.spec.params[p.name])}, ${metric}=${short(t.status.values[0])}`,
      }));
      const categories = p.type === "categorical" ? (p.values || []) : undefined;
      return html`<div class="plot-box" data-param=${p.name}>
        <h3>${metric} versus ${p.name}</h3>
        <${Scatter} id=${`plot-${p.name}`} points=${points} xLabel=${p.name} yLabel=${metric} categories=${categories} />
      </div>`;
    })}
  </div>`;
}

function related(events, exp, trials) {
  const uids = new Set([exp.metadata.uid, ...trials.map((t) => t.metadata.uid)]);
  return events.filter((ev) => uids.has((ev.involvedObject || {}).uid));
}

export function ExperimentDetail({ params }) {
  const { namespace, name } = params;
  const exps = useLiveList("experiments", { namespace, fieldSelector: `metadata.name=${name}` });
  const trialList = useLiveList("trials", { namespace, labelSelector: `${EXPERIMENT_LABEL}=${name}` });
  const events = useLiveList("events", { namespace });
  const exp = exps.items[0];
  const trials = [...trialList.items].sort((a, b) => a.spec.number - b.spec.number);
  const header = html`<p class="crumbs"><a href=${link("experiments")}>Experiments</a> / ${namespace} / ${name}</p>`;
  if (exps.status !== "loading" && !exp && !exps.error) {
    return html`<div class="page" id="experiment-page">${header}
      <div class="error" role="alert">Experiment ${namespace}/${name} not found.</div></div>`;
  }
  return html`<div class="page" id="experiment-page" data-experiment=${name}>
    ${header}
    <h1>Experiment ${name}</h1>
    <${Section} title="Summary" id="experiment" state=${exps}>
      ${exp ? html`<${Summary} exp=${exp} />` : ""}
    </${Section}>
    <${Section} title=${`Trials (${trials.length})`} id="trials" state=${trialList}>
      ${exp ? html`<${Trials} exp=${exp} trials=${trials} />` : ""}
    </${Section}>
    <${Section} title="Objective versus parameters" id="plots" state=${trialList}>
      ${exp ? html`<${Plots} exp=${exp} trials=${trials} />` : ""}
    </${Section}>
    <${Section} title="Events" id="events" state=${events}>
      ${exp ? html`<${EventsTable} id="experiment-events-table" events=${related(events.items, exp, trials)} />` : ""}
    </${Section}>
  </div>`;
}
