/**
 * The caps and the shutdown grace period in the configuration: PROXYGPT_MAX_CONCURRENT and
 * PROXYGPT_MAX_CONNECTIONS (positive whole numbers, unset = no cap), PROXYGPT_SHUTDOWN_GRACE_MS
 * (a whole number of milliseconds, 0 allowed, 20 s by default); anything else stops the start
 * naming the variable.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { KEY, UPSTREAM } from './config-helpers.js';

const load = (env: Record<string, string>) => loadConfig({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEY: KEY, ...env }).config;

function refusal(env: Record<string, string>): ConfigError {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe('caps and grace period', () => {
  it('defaults: no caps, 20 s of grace', () => {
    const config = load({});
    expect(config.maxConcurrent).toBeNull();
    expect(config.maxConnections).toBeNull();
    expect(config.shutdownGraceMs).toBe(20_000);
  });

  it('reads each value', () => {
    const config = load({ PROXYGPT_MAX_CONCURRENT: '64', PROXYGPT_MAX_CONNECTIONS: '"5000"', PROXYGPT_SHUTDOWN_GRACE_MS: '0' });
    expect(config).toMatchObject({ maxConcurrent: 64, maxConnections: 5000, shutdownGraceMs: 0 });
  });

  for (const [name, value] of [
    ['PROXYGPT_MAX_CONCURRENT', '0'],
    ['PROXYGPT_MAX_CONCURRENT', '-1'],
    ['PROXYGPT_MAX_CONCURRENT', '2.5'],
    ['PROXYGPT_MAX_CONNECTIONS', 'many'],
    ['PROXYGPT_SHUTDOWN_GRACE_MS', '-5'],
    ['PROXYGPT_SHUTDOWN_GRACE_MS', '30s'],
  ] as const) {
    it(`refuses ${name}=${value}, naming it`, () => {
      const err = refusal({ [name]: value });
      expect(err.variable).toBe(name);
      expect(err.message).toMatch(new RegExp(`^${name}: `));
    });
  }
});
