// Shared components: tables, status badges, usage bars, errors, ages, event lists.
//
// Everything is rendered through Preact (htm templates), which sets text as text nodes:
// API data is never parsed as HTML, so no escaping by hand is needed, and none of this
// code may use dangerouslySetInnerHTML.

import { h } from "preact";
import { useEffect, useState } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);

// -- time ------------------------------------------------------------------------------

const listeners = new Set();
setInterval(() => listeners.forEach((fn) => fn(Date.now())), 5000);

/** The current time, re-rendering the caller every 5 s (one shared timer). */
export function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    listeners.add(setNow);
    return () => listeners.delete(setNow);
  }, []);
  return now;
}

/** "42s", "5m", "3h", "2d": how long ago ``timestamp`` was. */
export function age(timestamp, now = Date.now()) {
  if (!timestamp) return "";
  const seconds = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function Age({ time }) {
  const now = useNow();
  return html`<time datetime=${time || ""} title=${time || ""}>${age(time, now)}</time>`;
}

// -- status ----------------------------------------------------------------------------

const TONES = {
  Succeeded: "ok", Completed: "ok", Ready: "ok", Active: "ok", True: "ok", Normal: "ok",
  Running: "busy", Admitted: "busy",
  Pending: "wait", Suspended: "wait", Unknown: "wait",
  Failed: "bad", Warning: "bad", False: "bad", Evicting: "bad",
  FINISHED: "ok", RUNNING: "busy", SCHEDULED: "wait", FAILED: "bad", KILLED: "bad", // tracking runs
};

export function Status({ phase }) {
  const text = phase || "Unknown";
  return html`<span class="status status-${TONES[text] || "wait"}" data-status=${text}>${text}</span>`;
}

// -- layout ----------------------------------------------------------------------------

/** A titled section; ``state`` is a live list's state, whose error is shown on top. */
export function Section({ title, id, state, children }) {
  return html`<section class="card" id=${id} data-state=${state ? state.status : "live"}>
    <h2>${title}${state && state.status === "live" ? html` <span class="live" title="updated live">live</span>` : ""}</h2>
    ${state && state.error ? html`<${ErrorBox} error=${state.error} />` : ""}
    ${state && state.status === "loading" ? html`<p class="muted">Loading…</p>` : children}
  </section>`;
}

/** An API failure, with the API's own message. */
export function ErrorBox({ error, prefix = "" }) {
  if (!error) return "";
  const code = error.status ? ` (${error.status}${error.reason ? ` ${error.reason}` : ""})` : "";
  return html`<div class="error" role="alert">${prefix}${error.message}${code}</div>`;
}

/** columns: [{title, cell: (row) => content, className}]; rows carry data-key. */
export function Table({ columns, rows, rowKey, empty = "Nothing yet.", id, rowClass }) {
  if (!rows.length) return html`<p class="muted empty" id=${id}>${empty}</p>`;
  return html`<table id=${id}>
    <thead><tr>${columns.map((c) => html`<th class=${c.className || ""}>${c.title}</th>`)}</tr></thead>
    <tbody>
      ${rows.map(
        (row) => html`<tr key=${rowKey(row)} data-key=${rowKey(row)} class=${rowClass ? rowClass(row) : ""}>
          ${columns.map((c) => html`<td class=${c.className || ""} data-col=${c.title}>${c.cell(row)}</td>`)}
        </tr>`,
      )}
    </tbody>
  </table>`;
}

/** A bar of ``used`` out of ``total``, with the amounts as text. */
export function UsageBar({ label, used, total, text }) {
  const share = total > 0 ? Math.min(1, used / total) : used > 0 ? 1 : 0;
  const tone = share >= 1 && used > 0 ? "full" : share >= 0.8 ? "high" : "";
  return html`<div class="usage" data-resource=${label}>
    <span class="usage-label">${label}</span>
    <span class="bar ${tone}"><span class="fill" style=${`width: ${(share * 100).toFixed(1)}%`}></span></span>
    <span class="usage-text">${text}</span>
  </div>`;
}

// -- events ----------------------------------------------------------------------------

export function eventTime(ev) {
  return ev.lastTimestamp || ev.firstTimestamp || ev.metadata.creationTimestamp || "";
}

/** Newest first: by last occurrence, then by resourceVersion (the store's write order). */
export function newestFirst(events) {
  return [...events].sort(
    (a, b) =>
      Date.parse(eventTime(b) || 0) - Date.parse(eventTime(a) || 0) ||
      (Number(b.metadata.resourceVersion) || 0) - (Number(a.metadata.resourceVersion) || 0),
  );
}

export function EventsTable({ events, id, limit, objectLink }) {
  const rows = newestFirst(events).slice(0, limit || events.length);
  const columns = [
    { title: "Last seen", cell: (ev) => html`<${Age} time=${eventTime(ev)} />` },
    { title: "Type", cell: (ev) => html`<${Status} phase=${ev.type} />` },
    { title: "Reason", cell: (ev) => ev.reason },
    {
      title: "Object",
      cell: (ev) => {
        const o = ev.involvedObject || {};
        const text = `${o.kind}/${o.name}`;
        const href = objectLink && objectLink(o);
        return href ? html`<a href=${href}>${text}</a>` : text;
      },
    },
    { title: "Message", cell: (ev) => ev.message, className: "wrap" },
    { title: "Count", cell: (ev) => String(ev.count || 1), className: "num" },
  ];
  return html`<${Table} id=${id} columns=${columns} rows=${rows} rowKey=${(ev) => ev.metadata.uid} empty="No events." />`;
}
