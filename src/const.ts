/** Values every layer agrees on; configuration that an operator may change lives in backend/config.ts. */

export const APP_NAME = 'myapi';

/** The OAuth2 token endpoint; Swagger UI's Authorize dialog posts the password grant here. */
export const TOKEN_URL = '/token';
/** RFC 7009 token revocation: logging out. */
export const REVOKE_URL = '/token/revoke';
/** RFC 7662 token introspection, for resource servers. */
export const INTROSPECT_URL = '/token/introspect';

/** Issuer and audience of our access tokens: a token minted for another service is refused. */
export const TOKEN_ISSUER = 'myapi';
export const TOKEN_AUDIENCE = 'myapi';

export const DEFAULT_TOKEN_EXPIRE_MINUTES = 60;

/** Unset MYAPI_DATABASE__DSN means this embedded database in the working directory. */
export const DEFAULT_DSN = 'pglite:./.myapi/pgdata';

export const DOCS_PATH = '/docs';
export const OPENAPI_PATH = '/openapi.json';

export const Tags = {
  auth: 'Authentication',
  movies: 'Movies',
  users: 'Users',
  operations: 'Operations',
} as const;

export const OAUTH2_SCHEME = 'OAuth2PasswordBearer';

/** The OAuth2 scopes an access token may carry; a route declares the ones it needs. */
export const Scopes = {
  moviesRead: 'movies:read',
  moviesWrite: 'movies:write',
  usersAdmin: 'users:admin',
} as const;
export type Scope = (typeof Scopes)[keyof typeof Scopes];

/** What each scope allows, for the OpenAPI document (Swagger UI's Authorize dialog). */
export const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  'movies:read': 'Read the movie catalogue',
  'movies:write': 'Add, change and delete movies',
  'users:admin': 'Manage user accounts',
};
