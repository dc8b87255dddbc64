// Registered models (live): name, how many versions, the latest, and the aliases.

import { Age, Section, Table, html } from "../components.js";
import { useLiveList } from "../live.js";
import { link } from "../router.js";

/** "champion → v2, staging → v3", aliases in name order. */
export function aliasesText(model) {
  return Object.entries(model.spec.aliases || {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([alias, version]) => `${alias} → v${version}`)
    .join(", ");
}

/** The name users wrote (MLflow allows any), and the resource name when they differ. */
export function modelTitle(model) {
  const display = model.spec.displayName;
  return display && display !== model.metadata.name ? `${display} (${model.metadata.name})` : model.metadata.name;
}

export function ModelsList({ principal }) {
  const namespace = principal.admin ? "" : principal.namespace;
  const models = useLiveList("models", { namespace });
  const versions = useLiveList("modelversions", { namespace });
  const counts = {};
  for (const v of versions.items) {
    const key = `${v.metadata.namespace}/${v.spec.model}`;
    counts[key] = (counts[key] || 0) + 1;
  }
  const rows = [...models.items].sort(
    (a, b) => a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name),
  );
  const key = (m) => `${m.metadata.namespace}/${m.metadata.name}`;
  const columns = [
    { title: "Name", cell: (m) => html`<a href=${link("models", m.metadata.namespace, m.metadata.name)}>${modelTitle(m)}</a>` },
    { title: "Namespace", cell: (m) => m.metadata.namespace },
    { title: "Versions", cell: (m) => String(counts[key(m)] || 0), className: "num" },
    { title: "Latest", cell: (m) => ((m.status || {}).latestVersion ? `v${m.status.latestVersion}` : ""), className: "num" },
    { title: "Aliases", cell: aliasesText },
    { title: "Description", cell: (m) => m.spec.description || "", className: "wrap" },
    { title: "Age", cell: (m) => html`<${Age} time=${m.metadata.creationTimestamp} />` },
  ];
  return html`<div class="page" id="models-page">
    <h1>Models</h1>
    <${Section} title=${`${rows.length} registered model${rows.length === 1 ? "" : "s"}${namespace ? ` in ${namespace}` : ""}`} id="models" state=${models}>
      ${versions.error ? html`<div class="error" role="alert">versions unknown: ${versions.error.message}</div>` : ""}
      <${Table} id="models-table" columns=${columns} rows=${rows} rowKey=${key} empty="No registered models." />
    </${Section}>
  </div>`;
}
