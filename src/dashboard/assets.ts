/**
 * The dashboard's files: its page, styles and script modules (src/dashboard/public, copied next
 * to this module into dist by `npm run build`) and uPlot's minified script (it sets `uPlot` on
 * the page) and stylesheet from node_modules. Read once when the routes are registered, served
 * from memory by name: no request path ever reaches the file system.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

export interface Asset {
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

/** The page's own files, by the name they are served under (/dashboard/assets/<name>). */
const OWN_FILES = ['dashboard.css', 'app.js', 'api.js', 'charts.js', 'views.js', 'format.js'];

function load(path: string): Asset {
  const ext = path.slice(path.lastIndexOf('.'));
  return { body: readFileSync(path), type: TYPES[ext] ?? 'application/octet-stream' };
}

export interface DashboardAssets {
  page: Asset;
  /** By file name. */
  files: Map<string, Asset>;
}

export function loadDashboardAssets(): DashboardAssets {
  const dir = fileURLToPath(new URL('./public/', import.meta.url));
  const files = new Map<string, Asset>();
  for (const name of OWN_FILES) files.set(name, load(dir + name));
  files.set('uPlot.iife.min.js', load(require.resolve('uplot/dist/uPlot.iife.min.js')));
  files.set('uPlot.min.css', load(require.resolve('uplot/dist/uPlot.min.css')));
  return { page: load(dir + 'index.html'), files };
}
