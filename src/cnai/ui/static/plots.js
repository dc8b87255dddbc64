// Small SVG plots for pages with tens to hundreds of points: a scatter (objective versus
// one parameter of an experiment's trials) and a time series (a service's requests and
// latency). SVG rather than the runs pages' uPlot canvas (charts.js): the points are few,
// and each one is an element a test can read (data-x, data-y, data-key) and a user can
// hover for its title. Labels are text nodes, never HTML.

import { html } from "./components.js";

const W = 420;
const H = 220;
const PAD = { left: 56, right: 12, top: 10, bottom: 34 };

/** About ``count`` round values spanning [lo, hi]. */
export function ticks(lo, hi, count = 4) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A number as a short label: 3 significant digits, no trailing zeros. */
export function short(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "";
  if (typeof value !== "number") return String(value);
  if (value !== 0 && (Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3)) return value.toExponential(2);
  return String(Number(value.toPrecision(3)));
}

function extent(values, pad = 0.05) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (!finite.length) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (lo === hi) {
    const d = Math.abs(lo) * 0.1 || 1;
    return [lo - d, hi + d];
  }
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

function scale([lo, hi], [a, b]) {
  return (v) => a + ((v - lo) / (hi - lo)) * (b - a);
}

function Axes({ xTicks, yTicks, xAt, yAt, xLabel, yLabel, xText = short, yText = short }) {
  const x0 = PAD.left;
  const y0 = H - PAD.bottom;
  return html`<g class="axes">
    <line x1=${x0} y1=${PAD.top} x2=${x0} y2=${y0} />
    <line x1=${x0} y1=${y0} x2=${W - PAD.right} y2=${y0} />
    ${yTicks.map(
      (t) => html`<g><line class="grid" x1=${x0} x2=${W - PAD.right} y1=${yAt(t)} y2=${yAt(t)} />
        <text x=${x0 - 6} y=${yAt(t) + 4} text-anchor="end">${yText(t)}</text></g>`,
    )}
    ${xTicks.map((t) => html`<text x=${xAt(t)} y=${y0 + 14} text-anchor="middle">${xText(t)}</text>`)}
    <text class="label" x=${(x0 + W - PAD.right) / 2} y=${H - 4} text-anchor="middle">${xLabel}</text>
    <text class="label" x=${12} y=${(PAD.top + y0) / 2} text-anchor="middle"
      transform=${`rotate(-90 12 ${(PAD.top + y0) / 2})`}>${yLabel}</text>
  </g>`;
}

/** points: [{x, y, key, title, highlight}]; x is a number, or a category when
 * ``categories`` (the x values in order) is given. */
export function Scatter({ points, xLabel, yLabel, categories, id }) {
  const categorical = Array.isArray(categories);
  const xOf = (p) => (categorical ? categories.indexOf(p.x) : p.x);
  const xRange = categorical ? [-0.5, Math.max(categories.length - 0.5, 0.5)] : extent(points.map(xOf));
  const yRange = extent(points.map((p) => p.y));
  const xAt = scale(xRange, [PAD.left, W - PAD.right]);
  const yAt = scale(yRange, [H - PAD.bottom, PAD.top]);
  const xTicks = categorical ? categories.map((_, i) => i) : ticks(...xRange);
  const xText = categorical ? (i) => String(categories[i]) : short;
  const ordered = [...points].sort((a, b) => Number(!!a.highlight) - Number(!!b.highlight)); // best on top
  return html`<svg class="plot scatter" id=${id} viewBox=${`0 0 ${W} ${H}`} role="img"
      aria-label=${`${yLabel} versus ${xLabel}`} data-points=${points.length}>
    <${Axes} xTicks=${xTicks} yTicks=${ticks(...yRange)} xAt=${xAt} yAt=${yAt}
      xLabel=${xLabel} yLabel=${yLabel} xText=${xText} />
    ${ordered.map(
      (p) => html`<circle key=${p.key} data-key=${p.key} data-x=${String(p.x)} data-y=${String(p.y)}
          class=${p.highlight ? "point best" : "point"} r=${p.highlight ? 6 : 4}
          cx=${xAt(xOf(p))} cy=${yAt(p.y)}><title>${p.title || `${short(p.x)}, ${short(p.y)}`}</title></circle>`,
    )}
  </svg>`;
}

function clock(seconds) {
  const d = new Date(seconds * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** A time series of one value per ``interval`` seconds from ``start`` (unix seconds);
 * series: [{name, values (numbers or null for a gap), className, dots (mark each point:
 * for sparse series, whose lone points a line would not show)}]. */
export function TimeSeries({ series, start, interval = 1, yLabel, id, yMin = 0 }) {
  const n = Math.max(...series.map((s) => s.values.length), 1);
  const end = start + (n - 1) * interval;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const top = all.length ? Math.max(...all) : 1;
  const yRange = [yMin, top > yMin ? top * 1.1 : yMin + 1];
  const xAt = scale([start, Math.max(end, start + 1)], [PAD.left, W - PAD.right]);
  const yAt = scale(yRange, [H - PAD.bottom, PAD.top]);
  const xTicks = ticks(start, end, 4).filter((t) => t % 60 === 0);
  const path = (values) => {
    let d = "";
    let pen = false;
    values.forEach((v, i) => {
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${xAt(start + i * interval).toFixed(1)},${yAt(v).toFixed(1)}`;
      pen = true;
    });
    return d;
  };
  return html`<figure class="timeseries">
    <svg class="plot" id=${id} viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${yLabel}>
      <${Axes} xTicks=${xTicks.length ? xTicks : ticks(start, end, 4)} yTicks=${ticks(...yRange)}
        xAt=${xAt} yAt=${yAt} xLabel="time" yLabel=${yLabel} xText=${clock} />
      ${series.map(
        (s, i) => html`<g class=${s.className || `series-${i}`} data-series=${s.name}
            data-sum=${String(s.values.reduce((a, v) => a + (v || 0), 0))}>
          <path class="line" d=${path(s.values)} />
          ${s.dots
            ? s.values.map((v, j) =>
                v === null || v === undefined
                  ? ""
                  : html`<circle class="dot" r="2" cx=${xAt(start + j * interval)} cy=${yAt(v)} />`,
              )
            : ""}
        </g>`,
      )}
    </svg>
    <figcaption>${series.map(
      (s, i) => html`<span class=${`key ${s.className || `series-${i}`}`}>${s.name}</span>`,
    )}</figcaption>
  </figure>`;
}
