// Line charts of metric histories, drawn with uPlot (vendored: vendor/uplot-1.6.32) on a
// canvas: 20 series of 1,000 points draw in a few milliseconds.
//
// <LineChart series=[{label, steps, values}] /> puts step on x. Series with different
// steps are joined on the union of their steps, a gap where a series has no point
// (spanGaps draws the line through it). Once drawn, the chart's element carries
// data-ready="1", data-series (series drawn) and data-points (points drawn, all series),
// and holds the uPlot instance as ``element.uplot``, so tests and the benchmark read what
// was drawn rather than pixels. Labels are set as canvas text and DOM text, never HTML.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "./vendor/uplot-1.6.32/uPlot.js";
import { html } from "./components.js";

const CSS = new URL("./vendor/uplot-1.6.32/uPlot.min.css", import.meta.url).href;
if (!document.querySelector(`link[href="${CSS}"]`)) {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = CSS;
  document.head.append(link);
}

/** A distinct colour for the i-th series (golden-angle hues). */
export function colour(i) {
  return `hsl(${Math.round((i * 137.508) % 360)}, 65%, 45%)`;
}

function increasing(xs) {
  for (let i = 1; i < xs.length; i++) if (!(xs[i] > xs[i - 1])) return false;
  return true;
}

/** uPlot's aligned data: [xs, ys of series 0, ...], joined on the union of steps. */
export function align(series) {
  if (series.length === 1 && increasing(series[0].steps)) return [series[0].steps, series[0].values];
  const all = new Set();
  for (const s of series) for (const step of s.steps) all.add(step);
  const xs = Float64Array.from(all).sort();
  const at = new Map();
  xs.forEach((x, i) => at.set(x, i));
  const ys = series.map((s) => {
    const y = new Array(xs.length).fill(null);
    for (let i = 0; i < s.steps.length; i++) y[at.get(s.steps[i])] = s.values[i];
    return y;
  });
  return [xs, ...ys];
}

function options(series, width, height, xLabel, onDraw) {
  return {
    width,
    height,
    hooks: { draw: [onDraw] },
    cursor: { drag: { x: true, y: false } },
    legend: { live: series.length <= 30 },
    scales: { x: { time: false } },
    axes: [{ label: xLabel }, { size: 60 }],
    series: [
      { label: xLabel },
      ...series.map((s, i) => ({ label: s.label, stroke: colour(i), width: 1.5, spanGaps: true, points: { show: false } })),
    ],
  };
}

/** series: [{label, steps, values}]; height in px; the width follows the container.
 * ``onDrawn()`` is called once, after the first draw. */
export function LineChart({ series, id, height = 240, xLabel = "step", className = "", onDrawn }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    const width = Math.max(200, el.clientWidth || 600);
    let drawn = false;
    const onDraw = () => {
      if (drawn) return;
      drawn = true;
      el.dataset.series = String(series.length);
      el.dataset.points = String(series.reduce((n, s) => n + s.steps.length, 0));
      el.dataset.ready = "1";
      if (onDrawn) onDrawn();
    };
    const plot = new uPlot(options(series, width, height, xLabel, onDraw), align(series), el);
    el.uplot = plot;
    const resize = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (w !== plot.width) plot.setSize({ width: w, height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
      delete el.uplot;
      el.dataset.ready = "";
    };
  }, [series, height, xLabel]);
  return html`<div class=${`chart ${className}`} id=${id} ref=${box}></div>`;
}
