import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Scopes, Tags } from '../const.js';
import {
  MovieIdParamsSchema,
  MovieIdQuerySchema,
  MovieListSchema,
  NewMoviesQuerySchema,
} from '../schemas/movies.js';
import { problemResponses } from '../schemas/problem.js';
import type { Services } from '../services/index.js';
import { bearerSecurity, requireScopes } from './deps.js';

const movieRef = { $ref: 'Movie', description: 'The movie' } as const;

export const moviesRouter: FastifyPluginAsyncTypebox<{ services: Services }> = async (
  app,
  { services },
) => {
  app.addHook('onRequest', requireScopes(services.auth, Scopes.moviesRead));
  const common = { tags: [Tags.movies], security: bearerSecurity(Scopes.moviesRead) };

  app.get(
    '/movies/',
    {
      schema: {
        ...common,
        summary: 'Get one movie by id (query form, as in the tutorial)',
        querystring: MovieIdQuerySchema,
        response: { 200: movieRef, ...problemResponses(401, 404, 422) },
      },
    },
    (request) => services.movies.getMovie(request.query.movie_id),
  );

  app.get(
    '/movies/new',
    {
      schema: {
        ...common,
        summary: 'Movies released since a year with at least a rating',
        description: 'Movies with `released >= year` and `rating >= rating`, ordered by movie_id.',
        querystring: NewMoviesQuerySchema,
        response: {
          200: { ...MovieListSchema, description: 'The matching movies, by movie_id' },
          ...problemResponses(401, 422),
        },
      },
    },
    (request) => services.movies.releasedSince(request.query),
  );

  app.get(
    '/movies/:movie_id',
    {
      schema: {
        ...common,
        summary: 'Get one movie by id',
        params: MovieIdParamsSchema,
        response: { 200: movieRef, ...problemResponses(401, 404, 422) },
      },
    },
    (request) => services.movies.getMovie(request.params.movie_id),
  );
};
