/**
 * The `model` label (src/metrics/model-labels.ts): clients choose model names, the label must come
 * from a set the gateway knows. Exact names of PROXYGPT_ALLOWED_MODELS stay, globs do not make a
 * name known; a model the price table prices takes that entry's name (a snapshot its family's);
 * an admin's price override makes its name known at once; everything else is `other`.
 */
import { describe, expect, it } from 'vitest';
import { PriceTable } from '../../src/metering/prices.js';
import { ModelLabels } from '../../src/metrics/model-labels.js';

const price = { input: 1, cachedInput: 1, output: 1 };

describe('model labels', () => {
  it('keeps known names, names a snapshot by its priced family, and reports anything else as other', () => {
    const labels = new ModelLabels(() => new PriceTable(), ['local-llama-3', 'gpt-4o*', 'team-?']);
    expect(labels.labelOf('gpt-4o-mini')).toBe('gpt-4o-mini');
    expect(labels.labelOf('gpt-4o-2024-08-06')).toBe('gpt-4o');
    expect(labels.labelOf('gpt-4o-mini-2024-07-18')).toBe('gpt-4o-mini');
    expect(labels.labelOf('local-llama-3')).toBe('local-llama-3');
    // Allowed by a glob, but not a name the gateway knows: any of them could be sent.
    expect(labels.labelOf('gpt-4oX-anything')).toBe('other');
    expect(labels.labelOf('team-a')).toBe('other');
    expect(labels.labelOf('<img src=x onerror=alert(1)>')).toBe('other');
    expect(labels.labelOf(null)).toBe('none');
  });

  it("follows the price table: an admin's override is known from the next call on, and gone when removed", () => {
    let table = new PriceTable();
    const labels = new ModelLabels(() => table, null);
    expect(labels.labelOf('my-llm')).toBe('other');
    table = new PriceTable().with({ 'my-llm': price });
    expect(labels.labelOf('my-llm')).toBe('my-llm');
    expect(labels.labelOf('my-llm-v2')).toBe('my-llm');
    table = new PriceTable();
    expect(labels.labelOf('my-llm')).toBe('other');
  });

  it('stays right past the number of names it remembers', () => {
    const labels = new ModelLabels(() => new PriceTable(), null);
    const names = Array.from({ length: 3_000 }, (_, i) => `client-name-${i}`);
    expect(new Set(names.map((n) => labels.labelOf(n)))).toEqual(new Set(['other']));
    expect(labels.labelOf('gpt-4.1-nano')).toBe('gpt-4.1-nano');
    expect(labels.labelOf('o3-mini-high')).toBe('o3-mini');
  });
});
