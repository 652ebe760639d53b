/** HTTP routes of /movies: reads, writes with ETags, pages and the tutorial query. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  IfMatchHeadersSchema,
  MovieCreateSchema,
  MovieIdParamsSchema,
  MovieIdQuerySchema,
  MovieListQuerySchema,
  MovieListSchema,
  MoviePageSchema,
  MoviePatchSchema,
  MovieReplaceSchema,
  NewMoviesQuerySchema,
  PageSizes,
} from '../schemas/movies.js';
import { problemResponses } from '../schemas/problem.js';
import { ruleScopeNames } from '../services/definition.js';
import type { Services } from '../services/index.js';
import { moviesDefinition, type TaggedMovie } from '../services/movies/index.js';
import { bearerSecurity, linkNextPage, principalOf, requireScopes } from './deps.js';
import { parseIfMatch } from './if_match.js';

const scopes = ruleScopeNames(moviesDefinition.name);
const tags = [moviesDefinition.tag.name];

const movieRef = { $ref: 'Movie', description: 'The movie' } as const;
const taggedMovie = {
  ...movieRef,
  headers: { etag: { type: 'string', description: 'The version to send back in If-Match' } },
} as const;

/** A write body is one small object: a 10 MB title is refused before it is even parsed. */
const WRITE_BODY_LIMIT = 64 * 1024;

/** Whose reads see whose writes (read replicas): the user's, across their logins. */
const readerOf = (request: FastifyRequest) => principalOf(request).userId;

/** The same request with `cursor` moved on: RFC 8288 `Link: <...>; rel="next"`. */
function tagged(reply: FastifyReply, { movie, etag }: TaggedMovie) {
  void reply.header('etag', etag);
  return movie;
}

const readsRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  app.addHook('onRequest', requireScopes(services.auth, scopes.read));
  const common = { tags, security: bearerSecurity(scopes.read) };

  app.get(
    '/movies/',
    {
      schema: {
        ...common,
        summary: 'Get one movie by id (query form, as in the tutorial)',
        querystring: MovieIdQuerySchema,
        response: { 200: taggedMovie, ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) =>
      tagged(reply, await services.movies.getTagged(request.query.movie_id, readerOf(request))),
  );

  app.get(
    '/movies/new',
    {
      schema: {
        ...common,
        summary: 'Movies released since a year with at least a rating',
        description:
          'Movies with `released >= year` and `rating >= rating`, oldest release first (then by ' +
          "movie_id), as a bare JSON array (the tutorial's shape), at most `limit` (default " +
          `${PageSizes.newDefault}, at most ${PageSizes.max}) at a time. When more match, the ` +
          '`Link` header gives the next page (`rel="next"`), whose `cursor` continues after the ' +
          'last movie of this one.',
        querystring: NewMoviesQuerySchema,
        response: {
          200: {
            ...MovieListSchema,
            description: 'The matching movies, by release year, then movie_id',
            headers: { link: { type: 'string', description: 'The next page, when there is one' } },
          },
          ...problemResponses(401, 403, 422),
        },
      },
    },
    async (request, reply) => {
      const page = await services.movies.releasedSince(request.query, readerOf(request));
      linkNextPage(reply, request.url, page.next === undefined ? undefined : { cursor: page.next });
      return page.items;
    },
  );

  app.get(
    '/movies',
    {
      schema: {
        ...common,
        summary: 'List movies: filter, search, sort, page',
        description:
          'Filters combine with AND. `q` matches titles containing the text, ignoring case and ' +
          'accents. Keyset pagination: each page ends with `next_cursor` (also in the `Link` ' +
          'header, `rel="next"`); pages stay consistent while movies are added or removed. ' +
          `Page size \`limit\`: default ${PageSizes.listDefault}, at most ${PageSizes.max}.`,
        querystring: MovieListQuerySchema,
        response: {
          200: {
            ...MoviePageSchema,
            description: 'One page of movies',
            headers: { link: { type: 'string', description: 'The next page, when there is one' } },
          },
          ...problemResponses(401, 403, 422),
        },
      },
    },
    async (request, reply) => {
      const page = await services.movies.list(request.query, readerOf(request));
      linkNextPage(reply, request.url, page.next === undefined ? undefined : { cursor: page.next });
      return { items: page.items, next_cursor: page.next ?? null, total: page.total };
    },
  );

  app.get(
    '/movies/:movie_id',
    {
      schema: {
        ...common,
        summary: 'Get one movie by id',
        params: MovieIdParamsSchema,
        response: { 200: taggedMovie, ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) =>
      tagged(reply, await services.movies.getTagged(request.params.movie_id, readerOf(request))),
  );
};

const writesRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  app.addHook('onRequest', requireScopes(services.auth, scopes.write));
  const common = { tags, security: bearerSecurity(scopes.write) };
  const conditional =
    'Needs `If-Match` with the `ETag` of the movie as last read (or `*`): without it 428, ' +
    'and 412 (with the current `ETag`) if the movie changed since, so no update is lost.';

  app.post(
    '/movies',
    {
      bodyLimit: WRITE_BODY_LIMIT,
      schema: {
        ...common,
        summary: 'Add a movie',
        body: MovieCreateSchema,
        response: {
          201: {
            ...taggedMovie,
            description: 'Created',
            headers: {
              ...taggedMovie.headers,
              location: { type: 'string', description: 'The new movie: /movies/{movie_id}' },
            },
          },
          ...problemResponses(401, 403, 409, 413, 422),
        },
      },
    },
    async (request, reply) => {
      const created = await services.movies.create(request.body, readerOf(request));
      void reply.code(201).header('location', `/movies/${created.movie.movie_id}`);
      return tagged(reply, created);
    },
  );

  app.put(
    '/movies/:movie_id',
    {
      bodyLimit: WRITE_BODY_LIMIT,
      schema: {
        ...common,
        summary: 'Replace a movie',
        description: conditional,
        params: MovieIdParamsSchema,
        headers: IfMatchHeadersSchema,
        body: MovieReplaceSchema,
        response: { 200: taggedMovie, ...problemResponses(401, 403, 404, 412, 413, 422, 428) },
      },
    },
    async (request, reply) =>
      tagged(
        reply,
        await services.movies.replace(
          request.params.movie_id,
          request.body,
          parseIfMatch(request.headers['if-match']),
          readerOf(request),
        ),
      ),
  );

  app.patch(
    '/movies/:movie_id',
    {
      bodyLimit: WRITE_BODY_LIMIT,
      schema: {
        ...common,
        summary: 'Change some fields of a movie',
        description: `Only the fields given change. ${conditional}`,
        params: MovieIdParamsSchema,
        headers: IfMatchHeadersSchema,
        body: MoviePatchSchema,
        response: { 200: taggedMovie, ...problemResponses(401, 403, 404, 412, 413, 422, 428) },
      },
    },
    async (request, reply) =>
      tagged(
        reply,
        await services.movies.patch(
          request.params.movie_id,
          request.body,
          parseIfMatch(request.headers['if-match']),
          readerOf(request),
        ),
      ),
  );

  app.delete(
    '/movies/:movie_id',
    {
      schema: {
        ...common,
        summary: 'Delete a movie',
        description: conditional,
        params: MovieIdParamsSchema,
        headers: IfMatchHeadersSchema,
        response: {
          204: { type: 'null', description: 'Deleted' },
          ...problemResponses(401, 403, 404, 412, 422, 428),
        },
      },
    },
    async (request, reply) => {
      await services.movies.remove(
        request.params.movie_id,
        parseIfMatch(request.headers['if-match']),
        readerOf(request),
      );
      return reply.code(204).send(null);
    },
  );
};

/** Reads need movies:read and writes movies:write: two plugins, each with its own scope hook. */
export const router: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  await app.register(readsRouter, { services });
  await app.register(writesRouter, { services });
};
