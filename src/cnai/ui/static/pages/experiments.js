// Experiments: the list (live), newest first, with progress and the best value so far.

import { Age, Section, Status, Table, html } from "../components.js";
import { useLiveList } from "../live.js";
import { short } from "../plots.js";
import { link } from "../router.js";

/** Trials that ended (succeeded, pruned or failed) over the budget: "3/4". */
export function trialsText(exp) {
  const s = exp.status || {};
  if (s.progress) return s.progress;
  return `${(s.succeeded || 0) + (s.pruned || 0) + (s.failed || 0)}/${exp.spec.maxTrials ?? 10}`;
}

/** The best trial's objective value, as the page writes it ("" when none yet). */
export function bestValue(exp) {
  const best = (exp.status || {}).bestTrial;
  return best && best.values && best.values.length ? short(best.values[0]) : "";
}

export function objectiveText(spec) {
  const o = spec.objective || {};
  const more = (o.additional || []).map((m) => `, ${m.metric} (${m.goal})`).join("");
  return `${o.metric} (${o.goal})${more}`;
}

export function ExperimentsList({ principal }) {
  const namespace = principal.admin ? "" : principal.namespace;
  const experiments = useLiveList("experiments", { namespace });
  const rows = [...experiments.items].sort(
    (a, b) =>
      (b.metadata.creationTimestamp || "").localeCompare(a.metadata.creationTimestamp || "") ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  const columns = [
    {
      title: "Name",
      cell: (e) => html`<a href=${link("experiments", e.metadata.namespace, e.metadata.name)}>${e.metadata.name}</a>`,
    },
    { title: "Namespace", cell: (e) => e.metadata.namespace },
    {
      title: "Status",
      cell: (e) => html`<${Status} phase=${(e.status || {}).phase} />${e.status && e.status.reason ? html` <span class="muted">${e.status.reason}</span>` : ""}`,
    },
    { title: "Algorithm", cell: (e) => (e.spec.algorithm || {}).name || "tpe" },
    { title: "Trials", cell: trialsText, className: "num" },
    { title: "Running", cell: (e) => String((e.status || {}).running || 0), className: "num" },
    { title: "Objective", cell: (e) => objectiveText(e.spec) },
    { title: "Best", cell: bestValue, className: "num" },
    { title: "Age", cell: (e) => html`<${Age} time=${e.metadata.creationTimestamp} />` },
  ];
  return html`<div class="page" id="experiments-page">
    <h1>Experiments</h1>
    <${Section} title=${`${rows.length} experiment${rows.length === 1 ? "" : "s"}${namespace ? ` in ${namespace}` : ""}`} id="experiments" state=${experiments}>
      <${Table} id="experiments-table" columns=${columns} rows=${rows}
        rowKey=${(e) => `${e.metadata.namespace}/${e.metadata.name}`} empty="No experiments." />
    </${Section}>
  </div>`;
}
