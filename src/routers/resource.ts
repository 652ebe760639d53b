/**
 * The HTTP routes every generated resource has: get, list with keyset pages and filters, create,
 * replace, patch (ETag and If-Match, as movies) and delete. A resource's router registers them
 * with its own schemas and adds its own routes beside them.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { ruleScopeNames } from '../services/definition.js';
import type { Services } from '../services/index.js';
import type { ListQuery, ResourceId, ResourceService, Tagged } from '../services/resource/index.js';
import { problemResponses } from '../schemas/problem.js';
import { IfMatchHeadersSchema } from '../schemas/resource.js';
import { bearerSecurity, linkNextPage, requireScopes } from './deps.js';
import { parseIfMatch } from './if_match.js';

export interface ResourceSchemas {
  /** What a read returns. */
  item: TSchema;
  /** What POST and PUT take: every field, without the id and version the database keeps. */
  create: TSchema;
  /** What PATCH takes: any of the fields. */
  patch: TSchema;
  /** The listing's query: the filters, cursor and limit. */
  listQuery: TSchema;
  /** The path's `{id}`. */
  idParams: TSchema;
}

export interface ResourceRoutes<Item, Create extends object> {
  definition: { name: string; tag: { name: string } };
  /** One item, for summaries and messages: `director`. */
  label: string;
  service: (services: Services) => ResourceService<Item, Create>;
  schemas: ResourceSchemas;
}

/** A write body is one small object: a 10 MB field is refused before it is even parsed. */
const WRITE_BODY_LIMIT = 64 * 1024;

const etagHeader = {
  etag: { type: 'string', description: 'The version to send back in If-Match' },
} as const;
const nextLink = {
  link: { type: 'string', description: 'The next page, when there is one' },
} as const;

function send<Item>(reply: FastifyReply, { item, etag }: Tagged<Item>): Item {
  void reply.header('etag', etag);
  return item;
}

/** The routes of one resource under `/NAME`, reads needing NAME:read and writes NAME:write. */
export function resourceRoutes<Item, Create extends object>(
  options: ResourceRoutes<Item, Create>,
): FastifyPluginAsyncTypebox<{ services: Services }> {
  const { definition, label, schemas } = options;
  const base = `/${definition.name}`;
  const scopes = ruleScopeNames(definition.name);
  const tags = [definition.tag.name];
  const tagged = { ...schemas.item, description: `The ${label}`, headers: etagHeader };
  const conditional =
    'Needs `If-Match` with the `ETag` as last read (or `*`): without it 428, and 412 (with ' +
    `the current \`ETag\`) if the ${label} changed since, so no update is lost.`;
  const idOf = (params: unknown) => (params as { id: ResourceId }).id;

  const reads: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
    const service = options.service(services);
    app.addHook('onRequest', requireScopes(services.auth, scopes.read));
    const common = { tags, security: bearerSecurity(scopes.read) };
    app.get(
      base,
      {
        schema: {
          ...common,
          summary: `List ${definition.name}: filter and page`,
          description:
            'Filters combine with AND. Keyset pages in id order: each page ends with ' +
            '`next_cursor` (also in the `Link` header, `rel="next"`).',
          querystring: schemas.listQuery,
          response: {
            200: {
              ...Type.Object({
                items: Type.Array(schemas.item),
                next_cursor: Type.Union([Type.String(), Type.Null()]),
              }),
              description: `One page of ${definition.name}`,
              headers: nextLink,
            },
            ...problemResponses(401, 403, 422),
          },
        },
      },
      async (request, reply) => {
        const page = await service.list(request.query as ListQuery);
        linkNextPage(
          reply,
          request.url,
          page.next === undefined ? undefined : { cursor: page.next },
        );
        return { items: page.items, next_cursor: page.next ?? null };
      },
    );
    app.get(
      `${base}/:id`,
      {
        schema: {
          ...common,
          summary: `Get one ${label} by id`,
          params: schemas.idParams,
          response: { 200: tagged, ...problemResponses(401, 403, 404, 422) },
        },
      },
      async (request, reply) => send(reply, await service.get(idOf(request.params))),
    );
  };

  const writes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
    const service = options.service(services);
    app.addHook('onRequest', requireScopes(services.auth, scopes.write));
    const docs = { tags, security: bearerSecurity(scopes.write) };
    app.post(
      base,
      {
        bodyLimit: WRITE_BODY_LIMIT,
        schema: {
          ...docs,
          summary: `Add a ${label}`,
          body: schemas.create,
          response: {
            201: {
              ...tagged,
              description: 'Created',
              headers: {
                ...etagHeader,
                location: { type: 'string', description: `The new ${label}: ${base}/{id}` },
              },
            },
            ...problemResponses(401, 403, 409, 413, 422),
          },
        },
      },
      async (request, reply) => {
        const created = await service.create(request.body as Create);
        const id = (created.item as { id: ResourceId }).id;
        void reply.code(201).header('location', `${base}/${id}`);
        return send(reply, created);
      },
    );
    const conditionalWrite = (summary: string, body: TSchema) => ({
      bodyLimit: WRITE_BODY_LIMIT,
      schema: {
        ...docs,
        summary,
        description: conditional,
        params: schemas.idParams,
        headers: IfMatchHeadersSchema,
        body,
        response: { 200: tagged, ...problemResponses(401, 403, 404, 409, 412, 413, 422, 428) },
      },
    });
    app.put(
      `${base}/:id`,
      conditionalWrite(`Replace a ${label}`, schemas.create),
      async (request, reply) =>
        send(
          reply,
          await service.replace(
            idOf(request.params),
            request.body as Create,
            parseIfMatch(request.headers['if-match']),
          ),
        ),
    );
    app.patch(
      `${base}/:id`,
      conditionalWrite(`Change some fields of a ${label}`, schemas.patch),
      async (request, reply) =>
        send(
          reply,
          await service.patch(
            idOf(request.params),
            request.body as Partial<Create>,
            parseIfMatch(request.headers['if-match']),
          ),
        ),
    );
    app.delete(
      `${base}/:id`,
      {
        schema: {
          ...docs,
          summary: `Delete a ${label}`,
          description: conditional,
          params: schemas.idParams,
          headers: IfMatchHeadersSchema,
          response: {
            204: { type: 'null', description: 'Deleted' },
            ...problemResponses(401, 403, 404, 409, 412, 422, 428),
          },
        },
      },
      async (request, reply) => {
        await service.remove(idOf(request.params), parseIfMatch(request.headers['if-match']));
        return reply.code(204).send(null);
      },
    );
  };

  return async (app, { services }) => {
    await app.register(reads, { services });
    await app.register(writes, { services });
  };
}
