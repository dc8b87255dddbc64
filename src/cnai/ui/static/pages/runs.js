// Runs: one page of a namespace's runs at a time (PAGE_SIZE), filtered by experiment (run
// group) and text and sorted by the server, so 1,000 runs or 100,000 cost the first
// screen one small request. Columns: name, experiment, status, start, duration, and the
// latest value of the metrics most of the page's runs have. Checked runs (kept across
// pages) open in the compare overlay. Not live (tracking records have no watch): the
// Refresh button loads the page again.

import { useEffect, useMemo, useState } from "preact/hooks";
import { ErrorBox, Status, html } from "../components.js";
import { link } from "../router.js";
import {
  MAX_COMPARE,
  PAGE_SIZE,
  commonKeys,
  defaultNamespace,
  duration,
  getTracking,
  markReady,
  startText,
  useLoad,
  useNamespaces,
  valueText,
} from "./runs_data.js";

const METRIC_COLUMNS = 6;
const TYPING_MS = 250;

export function compareLink(namespace, ids, metric) {
  const query = new URLSearchParams({ ids: ids.join(",") });
  if (metric) query.set("metric", metric);
  return `${link("runs", namespace, "compare")}?${query}`;
}

function useDebounced(value, ms) {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value]);
  return settled;
}

function SortHeader({ title, field, sort, onSort, className = "" }) {
  const active = sort === field || sort === `-${field}`;
  const descending = sort === `-${field}`;
  const next = active && !descending ? `-${field}` : field;
  const arrow = active ? (descending ? " ▼" : " ▲") : "";
  return html`<th class=${className} data-sort=${field} aria-sort=${active ? (descending ? "descending" : "ascending") : "none"}>
    <button type="button" class="linklike" onClick=${() => onSort(next)}>${title}${arrow}</button>
  </th>`;
}

function Filters({ namespace, namespaces, groups, group, setGroup, text, setText }) {
  return html`<div class="filters">
    <label>Namespace <select id="runs-namespace" value=${namespace}
      onChange=${(e) => { location.hash = link("runs", e.target.value); }}>
      ${(namespaces || [namespace]).map((n) => html`<option value=${n}>${n}</option>`)}
    </select></label>
    <label>Experiment <select id="runs-group" value=${group} onChange=${(e) => setGroup(e.target.value)}>
      <option value="">all</option>
      ${groups.map((g) => html`<option value=${g.name}>${g.name}</option>`)}
    </select></label>
    <label>Search <input id="runs-filter" type="search" placeholder="name or id" value=${text}
      onInput=${(e) => setText(e.target.value)} /></label>
  </div>`;
}

function RunsTable({ namespace, runs, groupNames, keys, sort, onSort, selected, toggle }) {
  const allChecked = runs.length > 0 && runs.every((r) => selected.has(r.id));
  const toggleAll = () => runs.forEach((r) => toggle(r.id, !allChecked));
  return html`<table id="runs-table" data-rows=${runs.length}>
    <thead><tr>
      <th><input type="checkbox" id="runs-check-all" title="select the runs on this page" checked=${allChecked} onChange=${toggleAll} /></th>
      <${SortHeader} title="Name" field="name" sort=${sort} onSort=${onSort} />
      <th>Experiment</th>
      <${SortHeader} title="Status" field="status" sort=${sort} onSort=${onSort} />
      <${SortHeader} title="Start" field="startTime" sort=${sort} onSort=${onSort} />
      <${SortHeader} title="Duration" field="duration" sort=${sort} onSort=${onSort} className="num" />
      ${keys.map((k) => html`<${SortHeader} title=${k} field=${`metrics.${k}`} sort=${sort} onSort=${onSort} className="num" />`)}
    </tr></thead>
    <tbody>
      ${runs.map(
        (run) => html`<tr key=${run.id} data-key=${run.id} class=${selected.has(run.id) ? "selected" : ""}>
          <td><input type="checkbox" class="run-check" data-run=${run.id} checked=${selected.has(run.id)}
            onChange=${(e) => toggle(run.id, e.target.checked)} /></td>
          <td data-col="Name"><a href=${link("runs", namespace, run.id)}>${run.name}</a></td>
          <td data-col="Experiment">${groupNames.get(run.groupId) || String(run.groupId)}</td>
          <td data-col="Status"><${Status} phase=${run.status} /></td>
          <td data-col="Start">${startText(run.startTime)}</td>
          <td data-col="Duration" class="num">${duration(run)}</td>
          ${keys.map((k) => {
            const m = run.metrics[k];
            return html`<td class="num" data-col=${k} data-metric=${k} data-value=${m ? String(m.value) : ""}
              title=${m ? `step ${m.step}` : ""}>${m ? valueText(m.value) : ""}</td>`;
          })}
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function Pager({ offset, total, shown, setOffset }) {
  if (!total) return "";
  return html`<div class="pager">
    <button type="button" id="runs-prev" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE_SIZE))}>‹ Previous</button>
    <span id="runs-range">${offset + 1}–${offset + shown} of ${total}</span>
    <button type="button" id="runs-next" disabled=${offset + shown >= total} onClick=${() => setOffset(offset + PAGE_SIZE)}>Next ›</button>
  </div>`;
}

export function RunsList({ params, principal }) {
  const namespace = params.namespace || defaultNamespace(principal);
  const namespaces = useNamespaces(principal);
  const groups = useLoad((signal) => getTracking(namespace, "rungroups", {}, signal), [namespace]);
  const [group, setGroup] = useState("");
  const [typed, setTyped] = useState("");
  const text = useDebounced(typed.trim(), TYPING_MS);
  const [sort, setSort] = useState("-startTime");
  const [selected, setSelected] = useState(new Set());
  // The offset belongs to one filter and order: a new one starts at the first page.
  const filterKey = JSON.stringify([group, text, sort]);
  const [page, setPage] = useState({ key: filterKey, offset: 0 });
  const offset = page.key === filterKey ? page.offset : 0;
  const setOffset = (value) => setPage({ key: filterKey, offset: value });
  const query = { group, q: text, sort, limit: PAGE_SIZE, offset };
  const runs = useLoad((signal) => getTracking(namespace, "runs", query, signal), [namespace, group, text, sort, offset]);

  const items = runs.data ? runs.data.items : [];
  const keys = useMemo(() => commonKeys(items, METRIC_COLUMNS), [runs.data]);
  const groupNames = new Map(((groups.data && groups.data.items) || []).map((g) => [g.id, g.name]));
  const ready = !runs.loading && !runs.error && runs.data !== null;
  useEffect(() => {
    markReady("runsReady", ready);
    return () => markReady("runsReady", false);
  }, [ready, runs.data]);

  const toggle = (id, on) =>
    setSelected((old) => {
      const next = new Set(old);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  const chosen = [...selected];
  const title = runs.data ? `${runs.data.total} run${runs.data.total === 1 ? "" : "s"} in ${namespace}` : `Runs in ${namespace}`;
  return html`<div class="page" id="runs-page">
    <h1>Runs</h1>
    <${Filters} namespace=${namespace} namespaces=${namespaces.data} groups=${(groups.data && groups.data.items) || []}
      group=${group} setGroup=${setGroup} text=${typed} setText=${setTyped} />
    <${ErrorBox} error=${groups.error} prefix="Experiments: " />
    <section class="card" id="runs" data-state=${runs.loading ? "loading" : runs.error ? "error" : "ready"}>
      <h2>${title}</h2>
      <div class="toolbar">
        <a id="runs-compare" class=${`button ${chosen.length >= 1 && chosen.length <= MAX_COMPARE ? "" : "disabled"}`}
          href=${chosen.length >= 1 && chosen.length <= MAX_COMPARE ? compareLink(namespace, chosen) : undefined}
          aria-disabled=${chosen.length < 1 || chosen.length > MAX_COMPARE}>Compare ${chosen.length} selected</a>
        ${selected.size ? html`<button type="button" class="linklike" id="runs-clear" onClick=${() => setSelected(new Set())}>clear selection</button>` : ""}
        <button type="button" id="runs-refresh" onClick=${runs.reload}>Refresh</button>
        ${chosen.length > MAX_COMPARE ? html`<span class="muted">at most ${MAX_COMPARE} runs compare at once</span>` : ""}
      </div>
      <${ErrorBox} error=${runs.error} />
      ${runs.data === null && runs.loading ? html`<p class="muted">Loading…</p>` : ""}
      ${runs.data && !items.length ? html`<p class="muted empty" id="runs-table">No runs${text || group ? " match" : ""}.</p>` : ""}
      ${items.length
        ? html`<${RunsTable} namespace=${namespace} runs=${items} groupNames=${groupNames} keys=${keys}
            sort=${sort} onSort=${setSort} selected=${selected} toggle=${toggle} />
          <${Pager} offset=${offset} total=${runs.data.total} shown=${items.length} setOffset=${setOffset} />`
        : ""}
    </section>
  </div>`;
}

