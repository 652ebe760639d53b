import { Type, type Static } from 'typebox';

const MovieId = Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'The movie id' });

export const MovieSchema = Type.Object(
  {
    movie_id: Type.Integer({ examples: [1] }),
    title: Type.String({ examples: ['The Shawshank Redemption'] }),
    released: Type.Integer({ description: 'Release year', examples: [1994] }),
    rating: Type.Number({ description: 'Rating, 0.0 to 9.9', examples: [9.2] }),
  },
  { $id: 'Movie' },
);
export type Movie = Static<typeof MovieSchema>;

export const MovieListSchema = Type.Array(Type.Ref('Movie'));

export const MovieIdQuerySchema = Type.Object(
  { movie_id: MovieId },
  { additionalProperties: false },
);
export const MovieIdParamsSchema = Type.Object({ movie_id: MovieId });

export const NewMoviesQuerySchema = Type.Object(
  {
    year: Type.Integer({
      minimum: 1800,
      maximum: 3000,
      description: 'Released in this year or later',
      examples: [1990],
    }),
    rating: Type.Number({
      minimum: 0,
      maximum: 10,
      description: 'Rated at least this',
      examples: [9],
    }),
  },
  { additionalProperties: false },
);
export type NewMoviesQuery = Static<typeof NewMoviesQuerySchema>;
