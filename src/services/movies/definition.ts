/** The movies service as the registry sees it: its tag, its scopes by rule, how it is built. */
import { defineService } from '../definition.js';
import { MovieService } from './service.js';

export const moviesDefinition = defineService({
  name: 'movies',
  needs: 'database',
  tag: { name: 'Movies', description: 'The movie catalogue (bearer token required)' },
  create: ({ context }) => new MovieService(context),
});
