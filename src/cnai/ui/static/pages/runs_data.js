// The runs pages' data: the tracking API's paths (cnai.tracking.routes), a hook that
// loads one request's answer, and how runs are written (durations, times, values).
//
// Tracking records are not resources: there is no watch for them, so these pages load
// once and offer a Refresh button rather than updating live.

import { useEffect, useState } from "preact/hooks";
import { getJSON } from "../api.js";

export const TRACKING = "/apis/tracking.cnai.io/v1";
export const PAGE_SIZE = 50;
export const MAX_COMPARE = 100; // keep in sync with cnai.tracking.search.MAX_IDS
export const CHART_POINTS = 2000; // maxPoints: each history thinned to this many

/** The path of ``rest`` under a namespace of the tracking API, with the query's set values. */
export function trackingPath(namespace, rest, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return `${TRACKING}/namespaces/${encodeURIComponent(namespace)}/${rest}${qs ? `?${qs}` : ""}`;
}

/** ``load(signal)``'s answer as {data, error, loading}, loaded again when ``deps`` change
 * or ``reload()`` is called; a stale answer (deps changed meanwhile) is dropped. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, error: null, loading: true }));
    load(controller.signal).then(
      (data) => controller.signal.aborted || setState({ data, error: null, loading: false }),
      (error) => controller.signal.aborted || error.name === "AbortError" || setState({ data: null, error, loading: false }),
    );
    return () => controller.abort();
  }, [...deps, generation]);
  return { ...state, reload: () => setGeneration((g) => g + 1) };
}

export function getTracking(namespace, rest, query, signal) {
  return getJSON(trackingPath(namespace, rest, query), { signal });
}

/** The histories of ``key`` for ``ids``, one request: {runId: {steps, values, timestamps}}. */
export async function histories(namespace, ids, key, signal) {
  const body = { key, runs: ids, maxPoints: CHART_POINTS };
  const answer = await getJSON(trackingPath(namespace, "metrics:history"), { signal, method: "POST", body });
  return answer.runs;
}

/** The namespaces a principal may pick runs from: its own, or (admin) every one. */
export function useNamespaces(principal) {
  return useLoad(
    (signal) =>
      principal.admin
        ? getJSON("/apis/cnai.io/v1alpha1/namespaces", { signal }).then((l) => l.items.map((n) => n.metadata.name).sort())
        : Promise.resolve([principal.namespace]),
    [principal.tokenId],
  );
}

export function defaultNamespace(principal) {
  return principal.admin ? "default" : principal.namespace;
}

/** "1h 02m", "3m 05s", "12s", "850 ms": how long a run ran (or has run so far). */
export function duration(run, now = Date.now()) {
  if (!run.startTime) return "";
  const ms = Math.max(0, (run.endTime || now) - run.startTime);
  if (ms < 1000) return `${ms} ms`;
  const s = Math.floor(ms / 1000);
  const pad = (n) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
}

/** A run's start as local date and time, "2026-01-31 14:05:09". */
export function startText(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A metric value as the tables write it: 4 significant digits, exact integers kept. */
export function valueText(value) {
  if (value === undefined || value === null) return "";
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  return Number(value.toPrecision(4)).toString();
}

/** The metric keys to show for ``runs``: the most common first (those all runs have
 * lead), then by name; at most ``most``. */
export function commonKeys(runs, most) {
  const counts = new Map();
  for (const run of runs) for (const key of Object.keys(run.metrics || {})) counts.set(key, (counts.get(key) || 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, most)
    .map(([key]) => key);
}

/** The query of the current location's hash ("#/runs/ns/compare?ids=a,b&metric=loss"). */
export function hashQuery() {
  const at = location.hash.indexOf("?");
  return new URLSearchParams(at >= 0 ? location.hash.slice(at + 1) : "");
}

/** Tell whoever waits (tests, benchmarks/dashboard.py) that a page's data is shown. */
export function markReady(name, ready) {
  if (ready) document.body.dataset[name] = "1";
  else delete document.body.dataset[name];
}
