/**
 * Access policy: which endpoints and which models the gateway exposes. Endpoints are matched by
 * method and path (exact, or a prefix rule ending in `/*`); models by glob (`gpt-4o*`).
 */
import picomatch from 'picomatch';
import type { EndpointRule } from '../config.js';
import { forbidden } from '../errors.js';

export class Policy {
  private readonly modelMatchers: ((model: string) => boolean) | null;

  constructor(
    readonly endpoints: readonly EndpointRule[],
    readonly models: readonly string[] | null,
  ) {
    this.modelMatchers = models === null ? null : picomatch([...models], { nocase: false, dot: true });
  }

  endpointAllowed(method: string, path: string): boolean {
    return this.endpoints.some((rule) => {
      if (rule.method !== method) return false;
      if (rule.path.endsWith('/*')) return path.startsWith(rule.path.slice(0, -1));
      return rule.path === path;
    });
  }

  modelAllowed(model: string): boolean {
    return this.modelMatchers === null || this.modelMatchers(model);
  }

  /** Throws 403 unless the endpoint is allowed. */
  checkEndpoint(method: string, path: string): void {
    if (!this.endpointAllowed(method, path)) {
      throw forbidden(`${method} ${path} is not enabled on this gateway.`, 'endpoint_not_allowed');
    }
  }

  /** Throws 403 unless the body's model (when it names one) is allowed. */
  checkModel(model: unknown): void {
    if (this.modelMatchers === null || model === undefined) return;
    if (typeof model !== 'string' || !this.modelAllowed(model)) {
      throw forbidden(`The model ${JSON.stringify(model)} is not enabled on this gateway.`, 'model_not_allowed');
    }
  }
}
