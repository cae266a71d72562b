/**
 * PROXYGPT_REQUEST_TIMEOUT_MS and PROXYGPT_KEEPALIVE_TIMEOUT_MS: defaults (a minute to send a
 * request, 72 s of keep-alive), values taken as given, and anything but a positive whole number
 * refused at start with the variable named.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const base = { OPENAI_API_KEY: 'sk-upstream-secret-0123456789abcdef', PROXYGPT_API_KEY: 'pgpt-test-key-aaaaaaaaaaaaaaaa' };

describe('connection bounds', () => {
  it('default to 60 s for a request and 72 s of keep-alive', () => {
    const { config } = loadConfig(base);
    expect(config.requestTimeoutMs).toBe(60_000);
    expect(config.keepAliveTimeoutMs).toBe(72_000);
  });

  it('take the values set', () => {
    const { config } = loadConfig({ ...base, PROXYGPT_REQUEST_TIMEOUT_MS: '300000', PROXYGPT_KEEPALIVE_TIMEOUT_MS: '5000' });
    expect(config.requestTimeoutMs).toBe(300_000);
    expect(config.keepAliveTimeoutMs).toBe(5_000);
  });

  it.each(['PROXYGPT_REQUEST_TIMEOUT_MS', 'PROXYGPT_KEEPALIVE_TIMEOUT_MS'])('%s refuses 0, negatives and non-numbers', (name) => {
    for (const value of ['0', '-1', '1.5', 'soon']) {
      let caught: unknown;
      try {
        loadConfig({ ...base, [name]: value });
      } catch (err) {
        caught = err;
      }
      expect(caught, value).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).variable).toBe(name);
    }
  });
});
