// Inference services (live): phase, URL, ready replicas and the latest revision.

import { Age, Section, Status, Table, html } from "../components.js";
import { useLiveList } from "../live.js";
import { link } from "../router.js";

export function ServicesList({ principal }) {
  const namespace = principal.admin ? "" : principal.namespace;
  const services = useLiveList("inferenceservices", { namespace });
  const rows = [...services.items].sort(
    (a, b) => a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name),
  );
  const columns = [
    {
      title: "Name",
      cell: (s) => html`<a href=${link("services", s.metadata.namespace, s.metadata.name)}>${s.metadata.name}</a>`,
    },
    { title: "Namespace", cell: (s) => s.metadata.namespace },
    {
      title: "Phase",
      cell: (s) => html`<${Status} phase=${(s.status || {}).phase} />${s.status && s.status.reason ? html` <span class="muted">${s.status.reason}</span>` : ""}`,
    },
    { title: "URL", cell: (s) => ((s.status || {}).url ? html`<code>${s.status.url}</code>` : ""), className: "wrap" },
    { title: "Ready", cell: (s) => (s.status || {}).replicasText || "", className: "num" },
    { title: "Latest revision", cell: (s) => (s.status || {}).latestRevision || "" },
    { title: "Model", cell: (s) => html`<code>${s.spec.predictor.model}</code>`, className: "wrap" },
    { title: "Age", cell: (s) => html`<${Age} time=${s.metadata.creationTimestamp} />` },
  ];
  return html`<div class="page" id="services-page">
    <h1>Inference services</h1>
    <${Section} title=${`${rows.length} service${rows.length === 1 ? "" : "s"}${namespace ? ` in ${namespace}` : ""}`} id="services" state=${services}>
      <${Table} id="services-table" columns=${columns} rows=${rows}
        rowKey=${(s) => `${s.metadata.namespace}/${s.metadata.name}`} empty="No inference services." />
    </${Section}>
  </div>`;
}
