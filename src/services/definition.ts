/**
 * What a service declares about itself so the application finds it without shared lists: its
 * name (its router is routers/<name>.ts), its OpenAPI tag, its scopes and how it is built.
 */
import type { ServiceContext } from './base.js';
import type { SessionService } from './sessions.js';
import type { UserService } from './users.js';

/** Who holds a scope: every user, or superusers only. */
export type Holder = 'user' | 'superuser';

export interface ScopeDefinition {
  scope: string;
  description: string;
  holder: Holder;
}

/** The services a definition may build on: accounts only where the caller configured them. */
export interface ServiceDeps {
  context: ServiceContext;
}
export interface AccountDeps extends ServiceDeps {
  users: UserService;
  sessions: SessionService;
}

interface DefinitionBase<Name extends string> {
  /** The service's key in `services`, the prefix of its scopes, and its router's module name. */
  name: Name;
  /** The OpenAPI tag its routes are listed under. */
  tag: { name: string; description: string };
  scopes: readonly ScopeDefinition[];
}

/** A service that needs only the database (movies, and every generated service). */
export interface DatabaseServiceDefinition<
  Name extends string,
  Service,
> extends DefinitionBase<Name> {
  needs: 'database';
  create(deps: ServiceDeps): Service;
}

/** A service that needs the accounts (users). */
export interface AccountServiceDefinition<
  Name extends string,
  Service,
> extends DefinitionBase<Name> {
  needs: 'accounts';
  create(deps: AccountDeps): Service;
}

export type ServiceDefinition<Name extends string = string, Service = unknown> =
  DatabaseServiceDefinition<Name, Service> | AccountServiceDefinition<Name, Service>;

const NAME = /^[a-z][a-z0-9_]{0,39}$/;

/**
 * The scopes a service gets by rule: `NAME:read` for every user (or superusers only, when
 * `read` says so) and `NAME:write` for superusers.
 */
export function ruleScopes(
  name: string,
  label: string,
  read: Holder = 'user',
): readonly ScopeDefinition[] {
  const names = ruleScopeNames(name);
  return [
    { scope: names.read, description: `Read ${label}`, holder: read },
    { scope: names.write, description: `Add, change and delete ${label}`, holder: 'superuser' },
  ];
}

/** The names of the scopes a service gets by rule, for its router's checks. */
export function ruleScopeNames<Name extends string>(name: Name) {
  return { read: `${name}:read`, write: `${name}:write` } as const;
}

type Input<D> = Omit<D, 'scopes'> & { scopes?: readonly ScopeDefinition[] };

/** A service definition, its scopes by rule unless it names its own. */
export function defineService<Name extends string, Service>(
  definition: Input<DatabaseServiceDefinition<Name, Service>>,
): DatabaseServiceDefinition<Name, Service>;
export function defineService<Name extends string, Service>(
  definition: Input<AccountServiceDefinition<Name, Service>>,
): AccountServiceDefinition<Name, Service>;
export function defineService<Name extends string, Service>(
  definition: Input<ServiceDefinition<Name, Service>>,
): ServiceDefinition<Name, Service> {
  if (!NAME.test(definition.name)) throw new Error(`service name ${definition.name} is invalid`);
  const scopes =
    definition.scopes ?? ruleScopes(definition.name, definition.tag.name.toLowerCase());
  return { ...definition, scopes };
}
