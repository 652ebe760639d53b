/** TypeBox schemas of the movies service: a movie, its writes, its queries and pages. */
import { Type, type Static } from 'typebox';

const MovieId = Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'The movie id' });

/**
 * The limits of what the columns can hold, checked before any SQL runs: NUMERIC(2,1) cannot hold
 * 10.0 and would make the database throw, and a title is one line of a catalogue, not a document.
 */
export const MovieLimits = {
  titleMaxLength: 500,
  releasedMin: 1888,
  releasedMax: 2100,
  ratingMin: 0,
  ratingMax: 9.9,
} as const;

const Title = Type.String({
  minLength: 1,
  maxLength: MovieLimits.titleMaxLength,
  // At least one non-blank character; surrounding blanks are trimmed before storing.
  pattern: '\\S',
  description: `Title, 1 to ${MovieLimits.titleMaxLength} characters; surrounding blanks are trimmed`,
  examples: ['Amélie'],
});
const Released = Type.Integer({
  minimum: MovieLimits.releasedMin,
  maximum: MovieLimits.releasedMax,
  description: `Release year, ${MovieLimits.releasedMin} (the first films) to ${MovieLimits.releasedMax}`,
  examples: [2001],
});
const Rating = Type.Number({
  minimum: MovieLimits.ratingMin,
  maximum: MovieLimits.ratingMax,
  description: 'Rating, 0.0 to 9.9 with at most one decimal',
  examples: [8.3],
});

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

/**
 * Page sizes. /movies/new defaults to the largest page: its clients are the tutorial's, which
 * expect the whole answer and do not follow `Link`, so they get as much of it as any request may.
 */
export const PageSizes = {
  listDefault: 50,
  newDefault: 1000,
  max: 1000,
} as const;

const Cursor = Type.String({
  minLength: 1,
  maxLength: 1024,
  description: 'Opaque: the `next` cursor of the previous page (from its `Link` header)',
});

const limit = (defaultSize: number) =>
  Type.Integer({
    minimum: 1,
    maximum: PageSizes.max,
    default: defaultSize,
    description: `Page size, 1 to ${PageSizes.max} (default ${defaultSize})`,
  });

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
    limit: limit(PageSizes.newDefault),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export type NewMoviesQuery = Static<typeof NewMoviesQuerySchema>;

export const MovieSortKeys = ['movie_id', 'title', 'released', 'rating'] as const;
export type MovieSortKey = (typeof MovieSortKeys)[number];
export type SortOrder = 'asc' | 'desc';

export const MovieListQuerySchema = Type.Object(
  {
    released_from: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 9999, description: 'Released in this year or later' }),
    ),
    released_to: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 9999, description: 'Released in this year or earlier' }),
    ),
    rating_min: Type.Optional(
      Type.Number({ minimum: 0, maximum: 10, description: 'Rated at least this' }),
    ),
    q: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description:
          'Title contains this text, ignoring case and accents (`leon` finds "Léon: The Professional")',
        examples: ['leon'],
      }),
    ),
    sort: Type.Union(
      [
        Type.Literal('movie_id'),
        Type.Literal('title'),
        Type.Literal('released'),
        Type.Literal('rating'),
      ],
      { default: 'movie_id', description: 'Sort key; ties are broken by movie_id' },
    ),
    order: Type.Union([Type.Literal('asc'), Type.Literal('desc')], {
      default: 'asc',
      description: 'Sort direction (applies to the movie_id tie-breaker too)',
    }),
    limit: limit(PageSizes.listDefault),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export type MovieListQuery = Static<typeof MovieListQuerySchema>;

export const MoviePageSchema = Type.Object(
  {
    items: Type.Array(Type.Ref('Movie')),
    next_cursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Pass as `cursor` for the next page; null on the last page',
    }),
    total: Type.Optional(
      Type.Integer({
        description:
          'How many movies match, given on the first page when it is at most 1000 (a bounded count)',
      }),
    ),
  },
  {
    examples: [
      {
        items: [{ movie_id: 38, title: 'Léon: The Professional', released: 1994, rating: 8.5 }],
        next_cursor: null,
        total: 1,
      },
    ],
  },
);

export const MovieCreateSchema = Type.Object(
  { movie_id: MovieId, title: Title, released: Released, rating: Rating },
  {
    additionalProperties: false,
    examples: [{ movie_id: 1001, title: 'Amélie', released: 2001, rating: 8.3 }],
  },
);
export type MovieCreate = Static<typeof MovieCreateSchema>;

export const MovieReplaceSchema = Type.Object(
  {
    movie_id: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 2_147_483_647,
        description: 'If given, must be the id in the path',
      }),
    ),
    title: Title,
    released: Released,
    rating: Rating,
  },
  {
    additionalProperties: false,
    examples: [{ title: 'Amélie', released: 2001, rating: 8.3 }],
  },
);
export type MovieReplace = Static<typeof MovieReplaceSchema>;

export const MoviePatchSchema = Type.Object(
  { title: Type.Optional(Title), released: Type.Optional(Released), rating: Type.Optional(Rating) },
  { additionalProperties: false, minProperties: 1, examples: [{ rating: 8.4 }] },
);
export type MoviePatch = Static<typeof MoviePatchSchema>;

export { IfMatchHeadersSchema } from './resource.js';
