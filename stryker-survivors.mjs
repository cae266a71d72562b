// @ts-check
/**
 * A Stryker reporter (`npm run mutate`) that writes each surviving mutant to
 * reports/mutation/survivors.txt the moment it survives, one line each (file:line, mutator,
 * original → replacement, how many tests covered it), so tests can be written against survivors
 * while a long run is still going; the full report still comes at the end.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';

const FILE = 'reports/mutation/survivors.txt';

class SurvivorsReporter {
  static inject = /** @type {const} */ ([]);

  constructor() {
    mkdirSync('reports/mutation', { recursive: true });
    writeFileSync(FILE, '');
  }

  /** @param {{ status: string, fileName: string, location: { start: { line: number } }, mutatorName: string, replacement?: string, coveredBy?: string[] }} result */
  onMutantTested(result) {
    if (result.status !== 'Survived' && result.status !== 'NoCoverage') return;
    const where = `${result.fileName.replace(/^.*?\/src\//, 'src/')}:${result.location.start.line + 1}`;
    const replacement = (result.replacement ?? '').replace(/\s+/g, ' ').slice(0, 160);
    appendFileSync(FILE, `${result.status}\t${where}\t${result.mutatorName}\t${replacement}\t${result.coveredBy?.length ?? 0} tests\n`);
  }
}

export const strykerPlugins = [{ kind: 'Reporter', name: 'survivors', injectableClass: SurvivorsReporter }];
