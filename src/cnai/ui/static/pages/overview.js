// Overview: ClusterQueues with quota and usage, Nodes with what is allocated on them,
// and the newest Events. All three are live lists.

import { EventsTable, Section, Status, Table, UsageBar, html } from "../components.js";
import { useLiveList } from "../live.js";
import { addRequests, formatAmount, parseQuantity } from "../quantity.js";
import { link } from "../router.js";

const RECENT_EVENTS = 25;
const GPU_ANNOTATION = "cnai.io/gpus"; // keep in sync with cnai.core.kubelet.GPU_ANNOTATION

export function objectLink(ref) {
  return ref.kind === "Job" && ref.namespace ? link("jobs", ref.namespace, ref.name) : null;
}

function QueueUsage({ cq }) {
  const flavors = (cq.status && cq.status.flavorsUsage) || [];
  if (!flavors.length) return html`<span class="muted">no quota</span>`;
  return flavors.map(
    (flavor) => html`<div class="flavor" data-flavor=${flavor.name}>
      <div class="muted small">flavor ${flavor.name}</div>
      ${flavor.resources.map((r) => {
        const used = parseQuantity(r.used);
        const nominal = parseQuantity(r.nominal);
        const borrowed = parseQuantity(r.borrowed);
        const text =
          `${formatAmount(r.name, used)} / ${formatAmount(r.name, nominal)}` +
          (borrowed > 0 ? ` (+${formatAmount(r.name, borrowed)} borrowed)` : "") +
          (parseQuantity(r.pending) > 0 ? ` · ${formatAmount(r.name, parseQuantity(r.pending))} pending` : "");
        return html`<${UsageBar} label=${r.name} used=${used} total=${nominal} text=${text} />`;
      })}
    </div>`,
  );
}

function ClusterQueues({ state }) {
  const rows = [...state.items].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const columns = [
    { title: "Name", cell: (cq) => cq.metadata.name },
    { title: "Cohort", cell: (cq) => cq.spec.cohort || "—" },
    { title: "Admitted", cell: (cq) => String(cq.status.admittedWorkloads || 0), className: "num" },
    { title: "Pending", cell: (cq) => String(cq.status.pendingWorkloads || 0), className: "num" },
    { title: "Quota and usage", cell: (cq) => html`<${QueueUsage} cq=${cq} />`, className: "grow" },
  ];
  return html`<${Section} title="ClusterQueues" id="clusterqueues" state=${state}>
    <${Table} columns=${columns} rows=${rows} rowKey=${(cq) => cq.metadata.name} empty="No ClusterQueues." />
  </${Section}>`;
}

/** What the pods bound to each node request (pods not yet finished), and which pod
 * holds each GPU index. */
export function allocations(pods) {
  const byNode = {};
  for (const pod of pods) {
    const node = pod.spec.nodeName;
    const phase = pod.status && pod.status.phase;
    if (!node || phase === "Succeeded" || phase === "Failed") continue;
    const entry = (byNode[node] = byNode[node] || { requests: {}, gpus: {} });
    addRequests(entry.requests, (pod.spec.resources || {}).requests);
    const held = ((pod.metadata.annotations || {})[GPU_ANNOTATION] || "").split(",").filter(Boolean);
    for (const index of held) entry.gpus[index] = `${pod.metadata.namespace}/${pod.metadata.name}`;
  }
  return byNode;
}

function NodeResources({ node, allocated }) {
  const allocatable = node.status.allocatable || {};
  return Object.keys(allocatable).map((name) => {
    const total = parseQuantity(allocatable[name]);
    const used = allocated.requests[name] || 0;
    if (name === "gpu" && total === 0) {
      return html`<div class="usage" data-resource="gpu"><span class="usage-label">gpu</span><span class="muted">none</span></div>`;
    }
    const text = `${formatAmount(name, used)} / ${formatAmount(name, total)}`;
    return html`<${UsageBar} label=${name} used=${used} total=${total} text=${text} />`;
  });
}

function Gpus({ node, allocated }) {
  const gpus = node.status.gpus || [];
  if (!gpus.length) return "";
  return html`<ul class="gpus">
    ${gpus.map(
      (gpu) => html`<li data-gpu=${gpu.index}>
        GPU ${gpu.index}: ${gpu.name || "unknown"}
        ${gpu.memoryBytes ? ` (${formatAmount("memory", gpu.memoryBytes)})` : ""}
        — ${allocated.gpus[gpu.index] ? `held by ${allocated.gpus[gpu.index]}` : "free"}
      </li>`,
    )}
  </ul>`;
}

function Nodes({ state, pods }) {
  const byNode = allocations(pods.items);
  const empty = { requests: {}, gpus: {} };
  const ready = (node) => (node.status.conditions || []).find((c) => c.type === "Ready");
  const columns = [
    { title: "Name", cell: (n) => n.metadata.name },
    { title: "Ready", cell: (n) => html`<${Status} phase=${ready(n) ? (ready(n).status === "True" ? "Ready" : "NotReady") : "Unknown"} />` },
    { title: "Runtime", cell: (n) => n.status.runtime || "" },
    {
      title: "Allocated / allocatable",
      className: "grow",
      cell: (n) => html`<${NodeResources} node=${n} allocated=${byNode[n.metadata.name] || empty} />
        <${Gpus} node=${n} allocated=${byNode[n.metadata.name] || empty} />`,
    },
  ];
  const rows = [...state.items].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return html`<${Section} title="Nodes" id="nodes" state=${state}>
    ${pods.error ? html`<div class="error" role="alert">allocations unknown: ${pods.error.message}</div>` : ""}
    <${Table} columns=${columns} rows=${rows} rowKey=${(n) => n.metadata.name} empty="No nodes." />
  </${Section}>`;
}

export function Overview({ principal }) {
  const namespace = principal.admin ? "" : principal.namespace;
  const queues = useLiveList("clusterqueues", {});
  const nodes = useLiveList("nodes", {});
  const pods = useLiveList("pods", { namespace });
  const events = useLiveList("events", { namespace });
  return html`<div class="page" id="overview-page">
    <h1>Overview</h1>
    <${ClusterQueues} state=${queues} />
    <${Nodes} state=${nodes} pods=${pods} />
    <${Section} title="Recent activity" id="events" state=${events}>
      <${EventsTable} id="events-table" events=${events.items} limit=${RECENT_EVENTS} objectLink=${objectLink} />
    </${Section}>
  </div>`;
}
