/**
 * The peer gateway, Portkey AI gateway 1.15.2, installed with npm into bench/.peer/ (git-ignored by
 * its own .gitignore; reused when already there) with @hono/node-server overridden to 1.14.1 (its
 * streaming breaks with later versions). Started as `node build/start-server.js --port=N
 * --headless` from the package folder and checked to answer 200 through to the mock before use.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './services.js';
import { freePort, startChild, stopChild, waitReady, type Child } from './procs.js';
import { CHAT_PATH, chatBody, peerTarget, type Target } from './targets.js';

export const PEER_VERSION = '1.15.2';
const HONO_NODE_SERVER = '1.14.1';
const PEER_DIR = join(ROOT, 'bench', '.peer');
const PACKAGE_DIR = join(PEER_DIR, 'node_modules', '@portkey-ai', 'gateway');

function installedVersion(pkgDir: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

/** Installs the peer unless the right versions are already there; returns what happened. */
export async function installPeer(): Promise<string> {
  const hono = join(PEER_DIR, 'node_modules', '@hono', 'node-server');
  if (installedVersion(PACKAGE_DIR) === PEER_VERSION && installedVersion(hono) === HONO_NODE_SERVER) return 'already installed';
  mkdirSync(PEER_DIR, { recursive: true });
  writeFileSync(join(PEER_DIR, '.gitignore'), '*\n');
  writeFileSync(
    join(PEER_DIR, 'package.json'),
    JSON.stringify(
      {
        name: 'proxygpt-bench-peer',
        private: true,
        dependencies: { '@portkey-ai/gateway': PEER_VERSION },
        overrides: { '@hono/node-server': HONO_NODE_SERVER },
      },
      null,
      2,
    ),
  );
  const started = Date.now();
  await promisify(execFile)('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts'], {
    cwd: PEER_DIR,
    timeout: 180_000,
  });
  if (installedVersion(PACKAGE_DIR) !== PEER_VERSION) throw new Error('npm install finished but @portkey-ai/gateway is not there');
  if (installedVersion(hono) !== HONO_NODE_SERVER) throw new Error(`@hono/node-server is ${installedVersion(hono)}, not ${HONO_NODE_SERVER}`);
  return `installed (${((Date.now() - started) / 1000).toFixed(1)} s)`;
}

export interface Peer {
  child: Child;
  target: Target;
}

/** Starts the peer and proves it answers a chat call with the mock's reply. */
export async function startPeer(mockPort: number, logDir: string): Promise<Peer> {
  const entry = join(PACKAGE_DIR, 'build', 'start-server.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing`);
  const port = await freePort();
  const child = startChild('portkey', process.execPath, [entry, `--port=${port}`, '--headless'], join(logDir, 'portkey.log'), {
    cwd: PACKAGE_DIR,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' },
  });
  const target = peerTarget(port, mockPort, child.proc.pid);
  let lastAnswer = '';
  try {
    await waitReady(child, async () => {
      const res = await fetch(target.origin + CHAT_PATH, { method: 'POST', headers: target.headers, body: chatBody(), signal: AbortSignal.timeout(3000) });
      lastAnswer = `${res.status} ${(await res.text()).slice(0, 200)}`;
      return res.status === 200 && lastAnswer.includes('chatcmpl-mock');
    });
  } catch (err) {
    await stopChild(child);
    throw new Error(`Portkey did not answer 200 through to the mock (last answer: ${lastAnswer || 'none'}): ${(err as Error).message}`);
  }
  return { child, target };
}
