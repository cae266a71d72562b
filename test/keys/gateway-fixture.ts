/**
 * Gateways with the admin API on for the stored-key and admin tests: `start` starts one (with an
 * optional injected clock) and tracks it; everything in `gateways` is closed after each test.
 */
import { afterEach } from 'vitest';
import type { TestGateway } from '../helpers.js';
import { startAdminGateway } from './helpers.js';

export interface AdminGateways {
  /** Closed after each test; push anything else the test starts that must be closed. */
  gateways: { close(): Promise<void> }[];
  /** A gateway with the admin key set (see startAdminGateway), closed after the test. */
  start(env?: Record<string, string>, clock?: () => number): Promise<TestGateway>;
}

/** Call once at the top of a test file: registers the afterEach that closes the tracked gateways. */
export function adminGateways(): AdminGateways {
  const gateways: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    gateways.length = 0;
  });
  return {
    gateways,
    async start(env: Record<string, string> = {}, clock?: () => number): Promise<TestGateway> {
      const gw = await startAdminGateway(env, clock === undefined ? {} : { clock });
      gateways.push(gw);
      return gw;
    },
  };
}
