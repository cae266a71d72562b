/**
 * The admin key check shared by the admin API and /metrics: exactly one Authorization header,
 * `Bearer <PROXYGPT_ADMIN_KEY>`, compared in constant time. A repeated Authorization is no admin
 * key: readers disagree on which copy counts.
 */
import type { IncomingMessage } from 'node:http';
import { bearerToken, constantTimeEqual } from '../auth/keys.js';
import { authorizationOf } from './require-proxy-key.js';

export function hasAdminKey(raw: IncomingMessage, adminKey: string): boolean {
  const sent = authorizationOf(raw);
  const token = Array.isArray(sent) && sent.length > 1 ? null : bearerToken(sent);
  return token !== null && constantTimeEqual(token, adminKey);
}
