/**
 * The services the application serves, in the order their routes are registered. Written by
 * `myapi new-service` and `myapi remove-service`; the one list a new service is added to.
 */
import { moviesDefinition } from './movies/index.js';
import { usersDefinition } from './users_definition.js';

export const serviceDefinitions = [moviesDefinition, usersDefinition] as const;
