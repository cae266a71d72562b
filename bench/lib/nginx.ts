/**
 * nginx as the floor of any pass-through proxy on this machine, when it is installed (`nginx` on
 * PATH or in /usr/sbin; `apt-get install -y nginx-light`). Run in the foreground (no daemon) with a
 * config generated in the bench's temp dir: one worker process (against one gateway process),
 * access log off, an upstream with `keepalive 64`, HTTP/1.1 upstream, no buffering either way (SSE
 * chunks pass as they come). Its CPU time and memory are the master's and the worker's together.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { freePort, httpProbe, startChild, waitReady } from './procs.js';
import type { Service } from './services.js';

/** The nginx binary, or null when it is not installed. */
export function findNginx(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nginx');
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

/** What `nginx -v` / `-V` print (to stderr). */
function nginxSays(bin: string, flag: '-v' | '-V'): string {
  const out = spawnSync(bin, [flag], { encoding: 'utf8' });
  return `${out.stdout ?? ''}${out.stderr ?? ''}`.trim();
}

export const nginxVersion = (bin: string) => nginxSays(bin, '-v').replace(/^nginx version:\s*/, '') || 'unknown version';

/** Temp paths for every module the binary has (a directive of a module built without fails). */
function tempPaths(bin: string, dir: string): string[] {
  const configure = nginxSays(bin, '-V');
  const modules = ['fastcgi', 'uwsgi', 'scgi'].filter((m) => !configure.includes(`--without-http_${m}_module`));
  return ['client_body', 'proxy', ...modules].map((m) => {
    mkdirSync(join(dir, 'temp', m), { recursive: true });
    return `  ${m}_temp_path ${join(dir, 'temp', m)};`;
  });
}

export function nginxConfig(bin: string, dir: string, port: number, mockPort: number): string {
  return [
    'worker_processes 1;',
    'worker_rlimit_nofile 20000;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'events { worker_connections 20000; }',
    'http {',
    '  access_log off;',
    ...tempPaths(bin, dir),
    '  upstream mock {',
    `    server 127.0.0.1:${mockPort};`,
    '    keepalive 64;',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    keepalive_requests 1000000;',
    '    location / {',
    '      proxy_pass http://mock;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '      proxy_buffering off;',
    '      proxy_request_buffering off;',
    '      proxy_read_timeout 600s;',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Starts nginx in the foreground in front of the mock; waits until it answers through to it. */
export async function startNginx(bin: string, mockPort: number, tmp: string, name = 'nginx'): Promise<Service> {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(bin, dir, port, mockPort));
  const child = startChild(name, bin, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], join(dir, 'nginx.log'));
  await waitReady(child, httpProbe(`http://127.0.0.1:${port}/v1/models`));
  return { child, port };
}
