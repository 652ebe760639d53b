/** The OAuth2 scopes a role may hold and a token may ask for: those the registered services declare. */
import type { Scope } from '../const.js';
import { OAuthError } from '../exc.js';
import type { ScopeDefinition } from './definition.js';
import { serviceDefinitions } from './registry.js';

function collect(definitions: readonly { scopes: readonly ScopeDefinition[] }[]) {
  const all = definitions.flatMap((definition) => definition.scopes);
  const seen = new Set<string>();
  for (const { scope } of all) {
    if (seen.has(scope)) throw new Error(`the scope ${scope} is declared by two services`);
    seen.add(scope);
  }
  return all;
}

const DEFINED = collect(serviceDefinitions);
const ALL_SCOPES: readonly Scope[] = DEFINED.map(({ scope }) => scope);
const USER_SCOPES: readonly Scope[] = DEFINED.filter(({ holder }) => holder === 'user').map(
  ({ scope }) => scope,
);

/** What each scope allows, for the OpenAPI document (Swagger UI's Authorize dialog). */
export const SCOPE_DESCRIPTIONS: Readonly<Record<Scope, string>> = Object.fromEntries(
  DEFINED.map(({ scope, description }) => [scope, description]),
);

/** What a role may hold: a superuser every scope, a user those its services give every user. */
export function allowedScopes(isSuperuser: boolean): readonly Scope[] {
  return isSuperuser ? ALL_SCOPES : USER_SCOPES;
}

export function isScope(value: string): value is Scope {
  return ALL_SCOPES.includes(value);
}

/** Parsed scope strings: a token's claim is parsed on every request, and there are few. */
const parsed = new Map<string, readonly Scope[]>();
const PARSED_MAX = 64;

/** A space-separated scope string (RFC 6749 section 3.3); undefined if it names an unknown scope. */
export function parseScope(text: string): readonly Scope[] | undefined {
  const known = parsed.get(text);
  if (known !== undefined) return known;
  const parts = text.split(' ').filter((part) => part !== '');
  if (!parts.every(isScope)) return undefined;
  // Canonical order, no duplicates: the same grant always reads the same.
  const scopes = ALL_SCOPES.filter((scope) => parts.includes(scope));
  if (parsed.size < PARSED_MAX) parsed.set(text, scopes);
  return scopes;
}

/**
 * The scopes to grant for a request: all that `available` offers when nothing is asked, exactly
 * what is asked otherwise. Asking for more than `available` is invalid_scope, never a silent cut.
 */
export function grantScopes(
  requested: string | undefined,
  available: readonly Scope[],
): readonly Scope[] {
  if (requested === undefined || requested.trim() === '') return [...available];
  const asked = parseScope(requested);
  if (asked === undefined) {
    const unknown = requested.split(' ').filter((part) => part !== '' && !isScope(part));
    throw new OAuthError(400, 'invalid_scope', `Unknown scope: ${unknown.join(' ')}`);
  }
  const refused = asked.filter((scope) => !available.includes(scope));
  if (refused.length > 0) {
    throw new OAuthError(
      400,
      'invalid_scope',
      `The scope ${refused.join(' ')} is not available to this user`,
    );
  }
  return asked;
}
