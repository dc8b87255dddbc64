// One job: its spec and status, its pods, the events about it and them, and a pod's log
// streamed live. Pods never restart in place (restartPolicy Never): a failed pod is
// replaced by a new one, so the job's restarts are its failed pods.

import { useState } from "preact/hooks";
import { Age, EventsTable, Section, Status, Table, html } from "../components.js";
import { useLiveList } from "../live.js";
import { link } from "../router.js";
import { LogView } from "./logs.js";

const JOB_NAME_LABEL = "cnai.io/job-name"; // keep in sync with cnai.batch.api

export function Field({ label, children }) {
  return html`<div class="field"><dt>${label}</dt><dd data-field=${label}>${children}</dd></div>`;
}

export function requestsText(requests) {
  const entries = Object.entries(requests || {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(", ") : "none";
}

function Summary({ job }) {
  const spec = job.spec || {};
  const status = job.status || {};
  const pod = (spec.template || {}).spec || {};
  return html`<dl class="fields" id="job-summary">
    <${Field} label="Status"><${Status} phase=${status.phase} />${status.reason ? ` ${status.reason}` : ""}</${Field}>
    ${status.message ? html`<${Field} label="Message">${status.message}</${Field}>` : ""}
    <${Field} label="Completions">${status.completionsText || ""}</${Field}>
    <${Field} label="Active / succeeded / failed">${`${status.active || 0} / ${status.succeeded || 0} / ${status.failed || 0}`}</${Field}>
    <${Field} label="Restarts (failed pods)">${String(status.failed || 0)}</${Field}>
    <${Field} label="Parallelism">${String(spec.parallelism ?? 1)}</${Field}>
    <${Field} label="Backoff limit">${String(spec.backoffLimit ?? "")}</${Field}>
    <${Field} label="Queue">${spec.queue || "default"}</${Field}>
    ${spec.priorityClassName ? html`<${Field} label="Priority class">${spec.priorityClassName}</${Field}>` : ""}
    <${Field} label="Requests">${requestsText((pod.resources || {}).requests)}</${Field}>
    <${Field} label="Command"><code>${[...(pod.command || []), ...(pod.args || [])].join(" ")}</code></${Field}>
    <${Field} label="Created"><${Age} time=${job.metadata.creationTimestamp} /> ago</${Field}>
    ${status.startTime ? html`<${Field} label="Started">${status.startTime}</${Field}>` : ""}
    ${status.completionTime ? html`<${Field} label="Finished">${status.completionTime}</${Field}>` : ""}
  </dl>`;
}

export function Conditions({ conditions }) {
  const columns = [
    { title: "Type", cell: (c) => c.type },
    { title: "Status", cell: (c) => html`<${Status} phase=${c.status} />` },
    { title: "Reason", cell: (c) => c.reason || "" },
    { title: "Message", cell: (c) => c.message || "", className: "wrap" },
    { title: "Since", cell: (c) => html`<${Age} time=${c.lastTransitionTime} />` },
  ];
  return html`<${Table} id="conditions-table" columns=${columns} rows=${conditions || []} rowKey=${(c) => c.type} empty="No conditions." />`;
}

function Pods({ pods, selected, onSelect }) {
  const columns = [
    {
      title: "Name",
      cell: (p) => html`<button class="linklike" type="button" onClick=${() => onSelect(p.metadata.name)}>${p.metadata.name}</button>`,
    },
    { title: "Phase", cell: (p) => html`<${Status} phase=${p.status.phase} />` },
    { title: "Reason", cell: (p) => p.status.reason || "" },
    { title: "Exit code", cell: (p) => (p.status.exitCode ?? "") + "", className: "num" },
    { title: "Node", cell: (p) => p.status.nodeName || p.spec.nodeName || "" },
    { title: "Age", cell: (p) => html`<${Age} time=${p.metadata.creationTimestamp} />` },
  ];
  return html`<${Table} id="pods-table" columns=${columns} rows=${pods}
    rowKey=${(p) => p.metadata.name} rowClass=${(p) => (p.metadata.name === selected ? "selected" : "")}
    empty="No pods yet." />`;
}

/** Events about the job, its pods, and the Workload it queues as (same name). */
export function related(events, job, pods) {
  const uids = new Set([job.metadata.uid, ...pods.map((p) => p.metadata.uid)]);
  return events.filter((ev) => {
    const o = ev.involvedObject || {};
    return uids.has(o.uid) || (o.kind === "Workload" && o.name === job.metadata.name);
  });
}

export function JobDetail({ params }) {
  const { namespace, name } = params;
  const jobs = useLiveList("jobs", { namespace, fieldSelector: `metadata.name=${name}` });
  const podList = useLiveList("pods", { namespace, labelSelector: `${JOB_NAME_LABEL}=${name}` });
  const events = useLiveList("events", { namespace });
  const [chosen, setChosen] = useState(null);
  const job = jobs.items[0];
  const pods = [...podList.items].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const running = pods.find((p) => p.status.phase === "Running");
  const selected = pods.find((p) => p.metadata.name === chosen) || running || pods[pods.length - 1];
  const header = html`<p class="crumbs"><a href=${link("jobs")}>Jobs</a> / ${namespace} / ${name}</p>`;
  if (jobs.status !== "loading" && !job && !jobs.error) {
    return html`<div class="page" id="job-page">${header}
      <div class="error" role="alert">Job ${namespace}/${name} not found.</div></div>`;
  }
  return html`<div class="page" id="job-page" data-job=${name}>
    ${header}
    <h1>Job ${name}</h1>
    <${Section} title="Summary" id="job" state=${jobs}>
      ${job ? html`<${Summary} job=${job} /><h3>Conditions</h3><${Conditions} conditions=${job.status.conditions} />` : ""}
    </${Section}>
    <${Section} title="Pods" id="pods" state=${podList}>
      <${Pods} pods=${pods} selected=${selected && selected.metadata.name} onSelect=${setChosen} />
    </${Section}>
    <${Section} title=${selected ? `Log of ${selected.metadata.name}` : "Log"} id="log">
      ${selected ? html`<${LogView} key=${selected.metadata.uid} pod=${selected} />` : html`<p class="muted">No pod yet.</p>`}
    </${Section}>
    <${Section} title="Events" id="events" state=${events}>
      ${job ? html`<${EventsTable} id="job-events-table" events=${related(events.items, job, pods)} />` : ""}
    </${Section}>
  </div>`;
}
