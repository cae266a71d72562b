// @ts-check
/**
 * A Stryker reporter (`npm run mutate`) for long runs: it writes each surviving (or uncovered)
 * mutant to <reports>/survivors.txt the moment it is known (file:line, mutator,
 * replacement, how many tests covered it), and keeps <reports>/progress.md current (<reports>: reports/mutation/<group>, see stryker.config.mjs): per
 * file, how many mutants are planned and how many are killed, survived, timed out or uncovered so
 * far, with the score of each file whose mutants are all tested. So tests can be written against
 * survivors while the run goes on, and a run stopped early still tells the files it finished.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';

const DIR = process.env.MUTATE_REPORTS ?? 'reports/mutation';
const SURVIVORS = `${DIR}/survivors.txt`;
const PROGRESS = `${DIR}/progress.md`;

/** @param {string} fileName */
const relative = (fileName) => fileName.replace(/^.*?\/src\//, 'src/');

class SurvivorsReporter {
  static inject = /** @type {const} */ ([]);

  /** @type {Map<string, { planned: number, killed: number, survived: number, timeout: number, noCoverage: number, other: number }>} */
  files = new Map();

  constructor() {
    mkdirSync(DIR, { recursive: true });
    writeFileSync(SURVIVORS, '');
  }

  /** @param {string} file */
  tally(file) {
    let t = this.files.get(file);
    if (t === undefined) this.files.set(file, (t = { planned: 0, killed: 0, survived: 0, timeout: 0, noCoverage: 0, other: 0 }));
    return t;
  }

  /** @param {{ mutantPlans: ReadonlyArray<{ mutant: { fileName: string, status?: string } }> }} event */
  onMutationTestingPlanReady({ mutantPlans }) {
    for (const plan of mutantPlans) {
      if (plan.mutant.status === 'Ignored') continue;
      this.tally(relative(plan.mutant.fileName)).planned++;
    }
    this.write();
  }

  /** @param {{ status: string, fileName: string, location: { start: { line: number } }, mutatorName: string, replacement?: string, coveredBy?: string[] }} result */
  onMutantTested(result) {
    if (result.status === 'Ignored') return;
    const file = relative(result.fileName);
    const t = this.tally(file);
    if (result.status === 'Killed') t.killed++;
    else if (result.status === 'Survived') t.survived++;
    else if (result.status === 'Timeout') t.timeout++;
    else if (result.status === 'NoCoverage') t.noCoverage++;
    else t.other++;
    if (result.status === 'Survived' || result.status === 'NoCoverage') {
      const replacement = (result.replacement ?? '').replace(/\s+/g, ' ').slice(0, 160);
      appendFileSync(SURVIVORS, `${result.status}\t${file}:${result.location.start.line}\t${result.mutatorName}\t${replacement}\t${result.coveredBy?.length ?? 0} tests\n`);
    }
    this.write();
  }

  write() {
    const rows = ['| file | planned | tested | killed | timeout | survived | no coverage | score |', '|---|---|---|---|---|---|---|---|'];
    for (const [file, t] of [...this.files].sort(([a], [b]) => a.localeCompare(b))) {
      const tested = t.killed + t.survived + t.timeout + t.noCoverage + t.other;
      const score = tested > 0 && tested >= t.planned ? `${(((t.killed + t.timeout) / tested) * 100).toFixed(1)} %` : '(running)';
      rows.push(`| ${file} | ${t.planned} | ${tested} | ${t.killed} | ${t.timeout} | ${t.survived} | ${t.noCoverage} | ${score} |`);
    }
    writeFileSync(PROGRESS, `${rows.join('\n')}\n`);
  }
}

export const strykerPlugins = [{ kind: 'Reporter', name: 'survivors', injectableClass: SurvivorsReporter }];
