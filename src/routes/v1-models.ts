/**
 * GET /v1/models and GET /v1/models/{model} answered by the gateway itself when it has several
 * upstreams: the models the caller may use across all of them (after the gateway's and the key's
 * allowlists), in OpenAI's list shape, `owned_by` naming the upstream that serves each. Nothing
 * goes upstream but the model lists the catalog keeps (model-list.ts); nothing is reserved or
 * recorded. With one upstream the request passes through, as every /v1 call does.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { modelNotFound } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { pathOf } from '../call/inspect.js';
import type { ModelCatalog } from '../upstreams/model-list.js';

const LIST = '/v1/models';

const modelObject = (id: string, upstream: string) => ({ id, object: 'model', created: 0, owned_by: upstream });

/** Whether the request is a model list or lookup (GET /v1/models, GET /v1/models/{model}). */
export function isModelsRequest(request: FastifyRequest): boolean {
  if (request.method !== 'GET') return false;
  const path = pathOf(request.raw.url ?? '/');
  return path === LIST || path.startsWith(`${LIST}/`);
}

/** Answers a model list or lookup (see isModelsRequest) from the gateway's upstreams. */
export async function answerModels(request: FastifyRequest, reply: FastifyReply, gateway: Gateway, catalog: ModelCatalog): Promise<FastifyReply> {
  const path = pathOf(request.raw.url ?? '/');
  if (path === LIST || path === `${LIST}/`) return list(request, reply, gateway, catalog);
  let id: string;
  try {
    id = decodeURIComponent(path.slice(LIST.length + 1));
  } catch {
    id = path.slice(LIST.length + 1);
  }
  const route = gateway.upstreams.route(id);
  if (route === null || !gateway.access.allowsModel(request.principal!, id)) throw modelNotFound(id);
  return reply.send(modelObject(id, route.candidates[0]!.upstream.name));
}

async function list(request: FastifyRequest, reply: FastifyReply, gateway: Gateway, catalog: ModelCatalog): Promise<FastifyReply> {
  const models = (await catalog.models()).filter((m) => gateway.access.allowsModel(request.principal!, m.id));
  return reply.send({ object: 'list', data: models.map((m) => modelObject(m.id, m.upstream)) });
}
