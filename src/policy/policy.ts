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
      // `/v1/models/*` covers what lies below `/v1/models/`: not `/v1/models` or `/v1/models/` itself.
      if (rule.path.endsWith('/*')) return path.length > rule.path.length - 1 && path.startsWith(rule.path.slice(0, -1));
      return rule.path === path;
    });
  }

  /** Whether every request `rule` allows is allowed here too (a key's own rules stay within the gateway's). */
  coversRule(rule: EndpointRule): boolean {
    // A prefix rule's own text (`/v1/models/*`) is a path below a prefix of ours exactly when
    // everything the rule allows is: one check serves both kinds of rule.
    return this.endpointAllowed(rule.method, rule.path);
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
