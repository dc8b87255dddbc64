// One registered model: its aliases, its versions (source, the run that produced each,
// format, signature, metrics) and the events about the model and its versions. Live.

import { Age, EventsTable, Section, Table, html } from "../components.js";
import { useLiveList } from "../live.js";
import { short } from "../plots.js";
import { link } from "../router.js";
import { modelTitle } from "./models.js";

function Field({ label, children }) {
  return html`<div class="field"><dt>${label}</dt><dd data-field=${label}>${children}</dd></div>`;
}

function tensors(list) {
  return (list || []).map((t) => `${t.name || "?"} ${t.datatype} [${(t.shape || []).join(", ")}]`).join("; ");
}

/** "input-0 FP64 [-1, 4] → output-0 INT64 [-1]", or "" without a signature. */
export function signatureText(signature) {
  if (!signature) return "";
  return `${tensors(signature.inputs) || "?"} → ${tensors(signature.outputs) || "?"}`;
}

function mapText(map) {
  return Object.entries(map || {})
    .map(([k, v]) => `${k}=${typeof v === "number" ? short(v) : v}`)
    .join(", ");
}

function Aliases({ model, versions }) {
  const rows = Object.entries(model.spec.aliases || {}).sort(([a], [b]) => a.localeCompare(b));
  const exists = new Set(versions.map((v) => v.spec.version));
  const columns = [
    { title: "Alias", cell: ([alias]) => alias },
    {
      title: "Version",
      cell: ([, n]) => html`v${n}${exists.has(n) ? "" : html` <span class="muted">(not registered)</span>`}`,
      className: "num",
    },
  ];
  return html`<${Table} id="aliases-table" columns=${columns} rows=${rows} rowKey=${([alias]) => alias} empty="No aliases." />`;
}

function Versions({ model, versions }) {
  const aliasesOf = {};
  for (const [alias, n] of Object.entries(model.spec.aliases || {})) (aliasesOf[n] = aliasesOf[n] || []).push(alias);
  const columns = [
    { title: "Version", cell: (v) => `v${v.spec.version}`, className: "num" },
    { title: "Name", cell: (v) => v.metadata.name },
    { title: "Aliases", cell: (v) => (aliasesOf[v.spec.version] || []).sort().join(", ") },
    { title: "Format", cell: (v) => v.spec.format || "" },
    { title: "Source", cell: (v) => html`<code>${v.spec.source}</code>`, className: "wrap" },
    {
      title: "Run",
      cell: (v) => (v.spec.runId ? html`<a href=${link("runs", v.metadata.namespace, v.spec.runId)}><code>${v.spec.runId}</code></a>` : ""),
      className: "wrap",
    },
    { title: "Signature", cell: (v) => signatureText(v.spec.signature), className: "wrap" },
    { title: "Metrics", cell: (v) => mapText(v.spec.metrics), className: "wrap" },
    { title: "Description", cell: (v) => v.spec.description || "", className: "wrap" },
    { title: "Age", cell: (v) => html`<${Age} time=${v.metadata.creationTimestamp} />` },
  ];
  const rows = [...versions].sort((a, b) => b.spec.version - a.spec.version);
  return html`<${Table} id="versions-table" columns=${columns} rows=${rows}
    rowKey=${(v) => String(v.spec.version)} empty="No versions yet." />`;
}

export function ModelDetail({ params }) {
  const { namespace, name } = params;
  const models = useLiveList("models", { namespace, fieldSelector: `metadata.name=${name}` });
  const all = useLiveList("modelversions", { namespace });
  const events = useLiveList("events", { namespace });
  const model = models.items[0];
  const versions = all.items.filter((v) => v.spec.model === name);
  const header = html`<p class="crumbs"><a href=${link("models")}>Models</a> / ${namespace} / ${name}</p>`;
  if (models.status !== "loading" && !model && !models.error) {
    return html`<div class="page" id="model-page">${header}
      <div class="error" role="alert">Model ${namespace}/${name} not found.</div></div>`;
  }
  const uids = new Set([model && model.metadata.uid, ...versions.map((v) => v.metadata.uid)]);
  return html`<div class="page" id="model-page" data-model=${name}>
    ${header}
    <h1>Model ${model ? modelTitle(model) : name}</h1>
    <${Section} title="Summary" id="model" state=${models}>
      ${model
        ? html`<dl class="fields" id="model-summary">
            <${Field} label="Name">${model.spec.displayName || model.metadata.name}</${Field}>
            <${Field} label="Resource">${model.metadata.name}</${Field}>
            <${Field} label="Latest version">${model.status && model.status.latestVersion ? `v${model.status.latestVersion}` : "none"}</${Field}>
            <${Field} label="Description">${model.spec.description || ""}</${Field}>
            <${Field} label="Tags">${mapText(model.spec.tags)}</${Field}>
            <${Field} label="Serve it as"><code>${`models:/${model.metadata.name}@ALIAS`}</code> or <code>${`models:/${model.metadata.name}/VERSION`}</code></${Field}>
            <${Field} label="Created"><${Age} time=${model.metadata.creationTimestamp} /> ago</${Field}>
          </dl>
          <h3>Aliases</h3>
          <${Aliases} model=${model} versions=${versions} />`
        : ""}
    </${Section}>
    <${Section} title=${`Versions (${versions.length})`} id="versions" state=${all}>
      ${model ? html`<${Versions} model=${model} versions=${versions} />` : ""}
    </${Section}>
    <${Section} title="Events" id="events" state=${events}>
      ${model ? html`<${EventsTable} id="model-events-table" events=${events.items.filter((ev) => uids.has((ev.involvedObject || {}).uid))} />` : ""}
    </${Section}>
  </div>`;
}
