/** The users service as the registry sees it: built by the accounts, administered by users:admin. */
import { defineService } from './definition.js';

/** The scope that manages every account; one's own account needs only a valid token. */
export const USERS_ADMIN = 'users:admin';

export const usersDefinition = defineService({
  name: 'users',
  needs: 'accounts',
  tag: { name: 'Users', description: 'Your account, and user administration (users:admin)' },
  scopes: [{ scope: USERS_ADMIN, description: 'Manage user accounts', holder: 'superuser' }],
  create: ({ users }) => users,
});

/** The OpenAPI tag of every account route, the users service's and those of the accounts around it. */
export const USERS_TAG = usersDefinition.tag.name;
