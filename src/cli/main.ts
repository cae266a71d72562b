#!/usr/bin/env node
/**
 * The `proxygpt` executable (package.json "bin"). Reads `.env` from the working directory, runs
 * one command and exits with its code; `serve` keeps the process running as the server. A cluster
 * worker re-runs this script with the same arguments, so it reaches `serve` again.
 */
import dotenv from 'dotenv';
import { run } from './program.js';

dotenv.config({ quiet: true });

const result = await run(process.argv, {
  env: process.env,
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
});
if (result !== 'serving') {
  process.exitCode = result;
  // Let stdout and stderr drain (they are asynchronous when piped to some consumers), then exit
  // even if an idle HTTP connection would keep the event loop alive.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(result)));
}
