/**
 * Standalone mock upstream for the benchmark: `node --import tsx bench/mock-server.ts <port>`.
 * Same behaviour as the test fixture, but keeps no per-request memory under load. Prints
 * `listening <port>` on stdout when ready and exits on SIGTERM/SIGINT or when its parent goes away.
 * The IPC message `finish-streams` ends every open stream early but normally.
 */
import { startMockOpenAI } from '../test/fixtures/mock-openai.js';

const port = Number(process.argv[2] ?? 0);
const mock = await startMockOpenAI(port, { record: false });
process.stdout.write(`listening ${mock.port}\n`);

const stop = () => void mock.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The bench asks over IPC to end all open streams normally (so nothing is left aborted).
process.on('message', (message) => {
  if (message === 'finish-streams') mock.finishStreams();
});
// An IPC channel closes when the parent dies, even on SIGKILL: do not outlive the bench.
process.on('disconnect', stop);
