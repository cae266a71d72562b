/**
 * Access policy: which endpoints and which models are exposed, globally (environment) and per
 * stored key (on top of the global policy, never beyond it). Endpoints are matched by method and
 * path (exact, or a prefix rule ending in `/*`); models by glob (`gpt-4o*`).
 */
import picomatch from 'picomatch';
import type { EndpointRule } from '../config.js';
import { endpointNotAllowed, modelNotAllowed } from '../errors.js';

export class Policy {
  private readonly modelMatchers: ((model: string) => boolean) | null;

  constructor(
    /** null: every endpoint (used for keys without their own list). */
    readonly endpoints: readonly EndpointRule[] | null,
    /** null: every model. */
    readonly models: readonly string[] | null,
    /** Who this policy belongs to, for error messages ("this gateway", "this key"). */
    private readonly scope = 'this gateway',
  ) {
    this.modelMatchers = models === null ? null : picomatch([...models], { nocase: false, dot: true });
  }

  endpointAllowed(method: string, path: string): boolean {
    if (this.endpoints === null) return true;
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
      throw endpointNotAllowed(`${method} ${path} is not enabled for ${this.scope}.`);
    }
  }

  /** Throws 403 unless the body's model (when it names one) is allowed. */
  checkModel(model: unknown): void {
    if (this.modelMatchers === null || model === undefined) return;
    if (typeof model !== 'string' || !this.modelAllowed(model)) {
      throw modelNotAllowed(`The model ${JSON.stringify(model)} is not enabled for ${this.scope}.`);
    }
  }
}
