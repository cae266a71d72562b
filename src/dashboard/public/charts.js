// @ts-check
/**
 * The dashboard's charts: uPlot line charts over the range's steps (x in epoch seconds), one per
 * quantity, redrawn on every load and resized with the window. Series labels go through uPlot's
 * legend, which sets them as text.
 */

/** uPlot's minified build, loaded by the page just before its modules (a deferred classic script). */
const uPlot = /** @type {any} */ (globalThis).uPlot;

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4b5563'];
const HEIGHT = 220;
/** Tick steps of a count axis: never half a request. */
const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 1e8, 1e9];

/** @type {Map<HTMLElement, any>} */
const charts = new Map();

/**
 * @typedef {{ label: string, values: Array<number | null>, color?: string, width?: number, dash?: number[] }} Line
 */

/**
 * Draws (or redraws) the chart in `node`.
 * @param {HTMLElement} node
 * @param {number[]} timestamps
 * @param {Line[]} lines
 * @param {(v: number) => string} format value formatting for the axis and legend
 * @param {{ integer?: boolean, points?: boolean }} [options] integer: counts (whole ticks only); points: mark each value (sparse series)
 */
export function drawChart(node, timestamps, lines, format, options = {}) {
  charts.get(node)?.destroy();
  const width = Math.max(280, node.clientWidth);
  const opts = {
    width,
    height: HEIGHT,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { stroke: '#475569', grid: { stroke: '#e2e8f0' } },
      {
        stroke: '#475569',
        grid: { stroke: '#e2e8f0' },
        size: 76,
        values: (_u, ticks) => ticks.map((t) => format(t)),
        ...(options.integer ? { incrs: INTEGER_STEPS } : {}),
      },
    ],
    series: [
      { label: 'Time' },
      ...lines.map((line, i) => ({
        label: line.label,
        stroke: line.color ?? PALETTE[i % PALETTE.length],
        width: line.width ?? 1.5,
        dash: line.dash,
        spanGaps: false,
        points: { show: options.points === true || timestamps.length <= 60, size: 5 },
        value: (_u, v) => (v === null || v === undefined ? '–' : format(v)),
      })),
    ],
  };
  const chart = new uPlot(opts, [timestamps, ...lines.map((l) => l.values)], node);
  node.dataset.points = String(lines.reduce((n, l) => n + l.values.filter((v) => v !== null && v !== 0).length, 0));
  charts.set(node, chart);
}

/** Drops every chart (sign-out). */
export function destroyCharts() {
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
}

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    for (const [node, chart] of charts) chart.setSize({ width: Math.max(280, node.clientWidth), height: HEIGHT });
  }, 100);
});

export { PALETTE };
