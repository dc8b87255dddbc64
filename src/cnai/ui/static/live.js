// Live lists: list a kind, then watch it from the list's resourceVersion, so every change
// after the list arrives exactly once (the API's watch replays history from there).
//
// A watch ends when the server's timeout passes or the connection drops: the loop
// resumes from the last resourceVersion it saw. A 410 Gone (that version was compacted
// away) means relist. Failures are shown, and retried with a growing delay.

import { useEffect, useState } from "preact/hooks";
import { ApiError, getJSON, ndjson, request, resourcePath } from "./api.js";

const WATCH_SECONDS = 240; // server-side bound of one watch request; the loop resumes after
const RETRY_MS = [500, 1000, 2000, 5000, 10000];
const EMIT_MS = 30; // coalesce bursts of events into one render

const keyOf = (obj) => obj.metadata.uid || `${obj.metadata.namespace}/${obj.metadata.name}`;
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

class Gone extends Error {}

/** Keep ``onChange(state)`` informed of a live list until ``signal`` aborts.
 * state: {items, error, status: "loading" | "live" | "retrying"}. */
export async function followList(plural, query, onChange, signal) {
  const items = new Map();
  let state = { items: [], error: null, status: "loading" };
  let timer = null;
  const emit = (patch, now = false) => {
    state = { ...state, ...patch };
    if (timer) clearTimeout(timer);
    const send = () => {
      timer = null;
      if (!signal.aborted) onChange({ ...state, items: Array.from(items.values()) });
    };
    if (now) send();
    else timer = setTimeout(send, EMIT_MS);
  };
  let failures = 0;
  while (!signal.aborted) {
    try {
      const list = await getJSON(resourcePath(plural, query), { signal });
      items.clear();
      for (const obj of list.items) items.set(keyOf(obj), obj);
      let rv = list.metadata.resourceVersion;
      emit({ error: null, status: "live" }, true);
      failures = 0;
      while (!signal.aborted) {
        const path = resourcePath(plural, {
          ...query,
          watch: "true",
          resourceVersion: rv,
          timeoutSeconds: WATCH_SECONDS,
        });
        const response = await request(path, { signal });
        for await (const event of ndjson(response)) {
          rv = apply(items, event) || rv;
          emit({ error: null, status: "live" });
        }
      }
    } catch (err) {
      if (signal.aborted || err.name === "AbortError") return;
      if (err instanceof Gone || (err instanceof ApiError && err.status === 410)) continue;
      emit({ error: err, status: "retrying" }, true);
      await sleep(RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)], signal);
    }
  }
}

/** Apply one watch event; returns the resourceVersion it carries. */
function apply(items, event) {
  const obj = event.object || {};
  if (event.type === "ERROR") {
    if (obj.code === 410) throw new Gone(obj.message);
    throw new ApiError(obj.code || 500, obj.message || "the watch failed", obj.reason);
  }
  const rv = obj.metadata && obj.metadata.resourceVersion;
  if (event.type === "ADDED" || event.type === "MODIFIED") items.set(keyOf(obj), obj);
  else if (event.type === "DELETED") items.delete(keyOf(obj));
  return rv;
}

/** The live list of ``plural`` matching ``query`` ({namespace, labelSelector,
 * fieldSelector}); a null query waits (e.g. for a selector that is not known yet). */
export function useLiveList(plural, query) {
  const [state, setState] = useState({ items: [], error: null, status: "loading" });
  const key = query === null ? null : JSON.stringify([plural, query]);
  useEffect(() => {
    setState({ items: [], error: null, status: "loading" });
    if (key === null) return undefined;
    const controller = new AbortController();
    followList(plural, query, setState, controller.signal);
    return () => controller.abort();
  }, [key]);
  return state;
}
