// Jobs: the list (live), newest first.

import { Age, Section, Status, Table, html } from "../components.js";
import { useLiveList } from "../live.js";
import { link } from "../router.js";

export function jobStatusText(job) {
  const s = job.status || {};
  return s.reason ? `${s.phase} (${s.reason})` : s.phase || "Pending";
}

export function JobsList({ principal }) {
  const namespace = principal.admin ? "" : principal.namespace;
  const jobs = useLiveList("jobs", { namespace });
  const rows = [...jobs.items].sort(
    (a, b) =>
      (b.metadata.creationTimestamp || "").localeCompare(a.metadata.creationTimestamp || "") ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  const columns = [
    {
      title: "Name",
      cell: (j) => html`<a href=${link("jobs", j.metadata.namespace, j.metadata.name)}>${j.metadata.name}</a>`,
    },
    { title: "Namespace", cell: (j) => j.metadata.namespace },
    {
      title: "Status",
      cell: (j) => html`<${Status} phase=${(j.status || {}).phase} />${j.status && j.status.reason ? html` <span class="muted">${j.status.reason}</span>` : ""}`,
    },
    { title: "Completions", cell: (j) => (j.status || {}).completionsText || "", className: "num" },
    { title: "Queue", cell: (j) => j.spec.queue || "default" },
    { title: "Age", cell: (j) => html`<${Age} time=${j.metadata.creationTimestamp} />` },
  ];
  return html`<div class="page" id="jobs-page">
    <h1>Jobs</h1>
    <${Section} title=${`${rows.length} job${rows.length === 1 ? "" : "s"}${namespace ? ` in ${namespace}` : ""}`} id="jobs" state=${jobs}>
      <${Table} id="jobs-table" columns=${columns} rows=${rows}
        rowKey=${(j) => `${j.metadata.namespace}/${j.metadata.name}`} empty="No jobs." />
    </${Section}>
  </div>`;
}
