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

/** The tags of the core routes; each registered service brings its own (services/registry.ts). */
export const Tags = {
  auth: 'Authentication',
  operations: 'Operations',
} as const;

/** OpenAPI security schemes (FastAPI's names): the password flow, and a bearer token pasted in. */
export const OAUTH2_SCHEME = 'OAuth2PasswordBearer';
export const BEARER_SCHEME = 'HTTPBearer';

/**
 * An OAuth2 scope an access token may carry: each registered service declares its own
 * (services/definition.ts), and services/scopes.ts knows them all.
 */
export type Scope = string;
