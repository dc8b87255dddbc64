// One inference service: its spec and status, its revisions with their share of the
// traffic and their replicas, charts of its requests and latency over the last minutes,
// and the events about it and its replicas.
//
// The lists are live (watch API). The charts poll the serving capability's traffic
// endpoint (.../inferenceservices/NAME/traffic: per-second requests, errors and latency
// the gateway recorded) every POLL_MS: it is a window of counters, not a resource, so
// there is nothing to watch.

import { useEffect, useState } from "preact/hooks";
import { getJSON, resourcePath } from "../api.js";
import { Age, ErrorBox, EventsTable, Section, Status, Table, html } from "../components.js";
import { useLiveList } from "../live.js";
import { TimeSeries, short } from "../plots.js";
import { link } from "../router.js";

const SERVICE_LABEL = "cnai.io/inferenceservice-name"; // keep in sync with cnai.serving.api
const POLL_MS = 3000;
const WINDOW_S = 300; // keep in sync with cnai.serving.traffic.WINDOW_S

function Field({ label, children }) {
  return html`<div class="field"><dt>${label}</dt><dd data-field=${label}>${children}</dd></div>`;
}

function Summary({ isvc }) {
  const spec = isvc.spec;
  const s = isvc.status || {};
  const p = spec.predictor;
  const scaling = spec.scaling || {};
  return html`<dl class="fields" id="service-summary">
    <${Field} label="Phase"><${Status} phase=${s.phase} />${s.reason ? ` ${s.reason}` : ""}</${Field}>
    ${s.message ? html`<${Field} label="Message">${s.message}</${Field}>` : ""}
    <${Field} label="URL"><code>${s.url || ""}</code></${Field}>
    <${Field} label="Model"><code>${p.model}</code>${p.format ? ` (${p.format})` : ""}</${Field}>
    <${Field} label="Ready replicas">${s.replicasText || ""}</${Field}>
    <${Field} label="Replicas (min–max)">${`${spec.minReplicas ?? 1}–${spec.maxReplicas ?? 1}`}</${Field}>
    <${Field} label="Scaling">${`${scaling.metric || "concurrency"}, target ${short(scaling.target ?? 10)} per replica`}</${Field}>
    <${Field} label="Canary traffic">${spec.canaryTrafficPercent == null ? "none" : `${spec.canaryTrafficPercent}%`}</${Field}>
    <${Field} label="Latest revision">${s.latestRevision || ""}</${Field}>
    <${Field} label="Latest ready revision">${s.latestReadyRevision || ""}</${Field}>
    ${spec.batching && spec.batching.maxBatchSize > 1
      ? html`<${Field} label="Batching">${`up to ${spec.batching.maxBatchSize} rows, ${short(spec.batching.maxLatencyMs)} ms`}</${Field}>`
      : ""}
    <${Field} label="Created"><${Age} time=${isvc.metadata.creationTimestamp} /> ago</${Field}>
  </dl>`;
}

function Revisions({ isvc }) {
  const columns = [
    { title: "Revision", cell: (r) => r.name },
    { title: "Model", cell: (r) => html`<code>${r.model}</code>`, className: "wrap" },
    {
      title: "Traffic",
      cell: (r) => html`<div class="share"><span class="bar"><span class="fill" style=${`width: ${r.trafficPercent || 0}%`}></span></span>
        <span class="share-text">${`${r.trafficPercent || 0}%`}</span></div>`,
      className: "grow",
    },
    { title: "Replicas", cell: (r) => `${r.readyReplicas || 0}/${r.replicas || 0}`, className: "num" },
  ];
  return html`<${Table} id="revisions-table" columns=${columns} rows=${(isvc.status || {}).revisions || []}
    rowKey=${(r) => r.name} empty="No revision yet." />`;
}

/** The traffic endpoint's answer, polled every POLL_MS: {data, error}. */
function useTraffic(namespace, name) {
  const [state, setState] = useState({ data: null, error: null });
  useEffect(() => {
    const controller = new AbortController();
    let timer = null;
    const path = `${resourcePath("inferenceservices", { namespace, name })}/traffic?seconds=${WINDOW_S}`;
    const poll = async () => {
      try {
        const data = await getJSON(path, { signal: controller.signal });
        setState({ data, error: null });
      } catch (err) {
        if (err.name === "AbortError") return;
        setState((old) => ({ data: old.data, error: err }));
      }
      if (!controller.signal.aborted) timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [namespace, name]);
  return state;
}

function Traffic({ namespace, name }) {
  const { data, error } = useTraffic(namespace, name);
  if (!data) return html`<${ErrorBox} error=${error} />${error ? "" : html`<p class="muted">Loading…</p>`}`;
  const minutes = Math.round((data.end - data.start + 1) / 60);
  const total = data.total;
  const seen = data.requests.filter((n) => n > 0).length;
  return html`<${ErrorBox} error=${error} prefix="not updated: " />
    <p id="traffic-total" data-requests=${String(total.requests)} data-errors=${String(total.errors)}>
      ${`${total.requests} request${total.requests === 1 ? "" : "s"}, ${total.errors} error${total.errors === 1 ? "" : "s"} (5xx) in the last ${minutes} min`}
      ${seen ? ` · busiest second ${Math.max(...data.requests)} requests` : ""}
    </p>
    <div class="plots">
      <div class="plot-box"><h3>Requests per second</h3>
        <${TimeSeries} id="requests-chart" start=${data.start} interval=${data.interval} yLabel="requests/s"
          series=${[
            { name: "requests", values: data.requests, className: "series-requests" },
            { name: "errors", values: data.errors, className: "series-errors" },
          ]} />
      </div>
      <div class="plot-box"><h3>Latency (ms)</h3>
        <${TimeSeries} id="latency-chart" start=${data.start} interval=${data.interval} yLabel="ms"
          series=${[
            { name: "p50", values: data.p50Ms, className: "series-p50", dots: true },
            { name: "p99", values: data.p99Ms, className: "series-p99", dots: true },
          ]} />
      </div>
    </div>`;
}

export function ServiceDetail({ params }) {
  const { namespace, name } = params;
  const services = useLiveList("inferenceservices", { namespace, fieldSelector: `metadata.name=${name}` });
  const pods = useLiveList("pods", { namespace, labelSelector: `${SERVICE_LABEL}=${name}` });
  const events = useLiveList("events", { namespace });
  const isvc = services.items[0];
  const header = html`<p class="crumbs"><a href=${link("services")}>Inference services</a> / ${namespace} / ${name}</p>`;
  if (services.status !== "loading" && !isvc && !services.error) {
    return html`<div class="page" id="service-page">${header}
      <div class="error" role="alert">InferenceService ${namespace}/${name} not found.</div></div>`;
  }
  const uids = new Set([isvc && isvc.metadata.uid, ...pods.items.map((p) => p.metadata.uid)]);
  return html`<div class="page" id="service-page" data-service=${name}>
    ${header}
    <h1>Inference service ${name}</h1>
    <${Section} title="Summary" id="service" state=${services}>
      ${isvc ? html`<${Summary} isvc=${isvc} />` : ""}
    </${Section}>
    <${Section} title="Revisions" id="revisions" state=${services}>
      ${isvc ? html`<${Revisions} isvc=${isvc} />` : ""}
    </${Section}>
    <${Section} title="Traffic" id="traffic">
      <${Traffic} namespace=${namespace} name=${name} />
    </${Section}>
    <${Section} title="Events" id="events" state=${events}>
      ${pods.error ? html`<div class="error" role="alert">replicas' events unknown: ${pods.error.message}</div>` : ""}
      ${isvc ? html`<${EventsTable} id="service-events-table" events=${events.items.filter((ev) => uids.has((ev.involvedObject || {}).uid))} />` : ""}
    </${Section}>
  </div>`;
}
