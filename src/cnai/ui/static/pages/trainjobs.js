// TrainJobs: the list (live) and one TrainJob: its gang (nodes by rank, the current
// generation's pods and those of earlier starts), its restarts and failures, a pod's log
// streamed live, and the events about it, its pods and its Workload.

import { useState } from "preact/hooks";
import { Age, EventsTable, Section, Status, Table, html } from "../components.js";
import { useLiveList } from "../live.js";
import { link } from "../router.js";
import { Conditions, Field, related, requestsText } from "./job.js";
import { LogView } from "./logs.js";

// Keep in sync with cnai.training.api.
const NAME_LABEL = "cnai.io/trainjob-name";
const GENERATION_LABEL = "cnai.io/gang-generation";
const RANK_LABEL = "cnai.io/node-rank";

export function TrainJobsList({ principal }) {
  const namespace = principal.admin ? "" : principal.namespace;
  const jobs = useLiveList("trainjobs", { namespace });
  const rows = [...jobs.items].sort(
    (a, b) =>
      (b.metadata.creationTimestamp || "").localeCompare(a.metadata.creationTimestamp || "") ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  const columns = [
    {
      title: "Name",
      cell: (j) => html`<a href=${link("trainjobs", j.metadata.namespace, j.metadata.name)}>${j.metadata.name}</a>`,
    },
    { title: "Namespace", cell: (j) => j.metadata.namespace },
    {
      title: "Status",
      cell: (j) => html`<${Status} phase=${(j.status || {}).phase} />${j.status && j.status.reason ? html` <span class="muted">${j.status.reason}</span>` : ""}`,
    },
    { title: "Nodes", cell: (j) => (j.status || {}).nodesText || "", className: "num" },
    { title: "Restarts", cell: (j) => String((j.status || {}).restarts || 0), className: "num" },
    { title: "Queue", cell: (j) => j.spec.queue || "default" },
    { title: "Age", cell: (j) => html`<${Age} time=${j.metadata.creationTimestamp} />` },
  ];
  return html`<div class="page" id="trainjobs-page">
    <h1>Training</h1>
    <${Section} title=${`${rows.length} TrainJob${rows.length === 1 ? "" : "s"}${namespace ? ` in ${namespace}` : ""}`} id="trainjobs" state=${jobs}>
      <${Table} id="trainjobs-table" columns=${columns} rows=${rows}
        rowKey=${(j) => `${j.metadata.namespace}/${j.metadata.name}`} empty="No TrainJobs." />
    </${Section}>
  </div>`;
}

function Summary({ job }) {
  const spec = job.spec || {};
  const trainer = spec.trainer || {};
  const status = job.status || {};
  const ns = job.metadata.namespace;
  return html`<dl class="fields" id="trainjob-summary">
    <${Field} label="Status"><${Status} phase=${status.phase} />${status.reason ? ` ${status.reason}` : ""}</${Field}>
    ${status.message ? html`<${Field} label="Message">${status.message}</${Field}>` : ""}
    <${Field} label="Nodes">${status.nodesText || ""}</${Field}>
    <${Field} label="Restarts">${String(status.restarts || 0)}</${Field}>
    <${Field} label="Failures / backoff limit">${`${status.failures || 0} / ${spec.backoffLimit ?? ""}`}</${Field}>
    <${Field} label="Processes per node">${String(trainer.numProcPerNode ?? 1)}</${Field}>
    <${Field} label="Queue">${spec.queue || "default"}</${Field}>
    ${spec.priorityClassName ? html`<${Field} label="Priority class">${spec.priorityClassName}</${Field}>` : ""}
    <${Field} label="Requests per node">${requestsText((trainer.resourcesPerNode || {}).requests)}</${Field}>
    <${Field} label="Command"><code>${[...(trainer.command || []), ...(trainer.args || [])].join(" ")}</code></${Field}>
    ${status.runId ? html`<${Field} label="Run"><a href=${link("runs", ns, status.runId)}>${status.runId}</a></${Field}>` : ""}
    ${status.checkpointDir ? html`<${Field} label="Checkpoints"><code>${status.checkpointDir}</code></${Field}>` : ""}
    <${Field} label="Created"><${Age} time=${job.metadata.creationTimestamp} /> ago</${Field}>
    ${status.startTime ? html`<${Field} label="Started">${status.startTime}</${Field}>` : ""}
    ${status.completionTime ? html`<${Field} label="Finished">${status.completionTime}</${Field}>` : ""}
  </dl>`;
}

function Pods({ pods, selected, onSelect }) {
  const label = (p, key) => (p.metadata.labels || {})[key] ?? "";
  const columns = [
    {
      title: "Name",
      cell: (p) => html`<button class="linklike" type="button" onClick=${() => onSelect(p.metadata.name)}>${p.metadata.name}</button>`,
    },
    { title: "Generation", cell: (p) => label(p, GENERATION_LABEL), className: "num" },
    { title: "Rank", cell: (p) => label(p, RANK_LABEL), className: "num" },
    { title: "Phase", cell: (p) => html`<${Status} phase=${p.status.phase} />` },
    { title: "Reason", cell: (p) => p.status.reason || "" },
    { title: "Exit code", cell: (p) => (p.status.exitCode ?? "") + "", className: "num" },
    { title: "Age", cell: (p) => html`<${Age} time=${p.metadata.creationTimestamp} />` },
  ];
  return html`<${Table} id="trainjob-pods-table" columns=${columns} rows=${pods}
    rowKey=${(p) => p.metadata.name} rowClass=${(p) => (p.metadata.name === selected ? "selected" : "")}
    empty="No pods yet." />`;
}

export function TrainJobDetail({ params }) {
  const { namespace, name } = params;
  const jobs = useLiveList("trainjobs", { namespace, fieldSelector: `metadata.name=${name}` });
  const podList = useLiveList("pods", { namespace, labelSelector: `${NAME_LABEL}=${name}` });
  const events = useLiveList("events", { namespace });
  const [chosen, setChosen] = useState(null);
  const job = jobs.items[0];
  // Newest generation first, then by rank.
  const order = (p) => [
    -Number((p.metadata.labels || {})[GENERATION_LABEL] || 0),
    Number((p.metadata.labels || {})[RANK_LABEL] || 0),
  ];
  const pods = [...podList.items].sort((a, b) => {
    const [ga, ra] = order(a);
    const [gb, rb] = order(b);
    return ga - gb || ra - rb || a.metadata.name.localeCompare(b.metadata.name);
  });
  const running = pods.find((p) => p.status.phase === "Running");
  const selected = pods.find((p) => p.metadata.name === chosen) || running || pods[0];
  const header = html`<p class="crumbs"><a href=${link("trainjobs")}>Training</a> / ${namespace} / ${name}</p>`;
  if (jobs.status !== "loading" && !job && !jobs.error) {
    return html`<div class="page" id="trainjob-page">${header}
      <div class="error" role="alert">TrainJob ${namespace}/${name} not found.</div></div>`;
  }
  return html`<div class="page" id="trainjob-page" data-trainjob=${name}>
    ${header}
    <h1>TrainJob ${name}</h1>
    <${Section} title="Summary" id="trainjob" state=${jobs}>
      ${job ? html`<${Summary} job=${job} /><h3>Conditions</h3><${Conditions} conditions=${job.status.conditions} />` : ""}
    </${Section}>
    <${Section} title="Pods" id="trainjob-pods" state=${podList}>
      <${Pods} pods=${pods} selected=${selected && selected.metadata.name} onSelect=${setChosen} />
    </${Section}>
    <${Section} title=${selected ? `Log of ${selected.metadata.name}` : "Log"} id="log">
      ${selected ? html`<${LogView} key=${selected.metadata.uid} pod=${selected} />` : html`<p class="muted">No pod yet.</p>`}
    </${Section}>
    <${Section} title="Events" id="trainjob-events" state=${events}>
      ${job ? html`<${EventsTable} id="trainjob-events-table" events=${related(events.items, job, pods)} />` : ""}
    </${Section}>
  </div>`;
}
