/** The service (CRUD class, service, definition) and router a generated service starts from. */
import type { ServiceSpec } from './fields.js';
import { camel, pascal, title, words } from './names.js';

export function crudModule(spec: ServiceSpec): string {
  const Item = pascal(spec.singular);
  const table = camel(spec.name);
  return `/** ${Item}CRUD: every query on the ${words(spec.name)} table (written by \`myapi new-service\`). */
import { ${table} } from '../../models/${spec.name}.js';
import type { ServiceContext } from '../base.js';
import { ResourceCRUD, type ResourceTable } from '../resource/index.js';

/** What the resource base classes need to know of the table. */
export const ${camel(spec.singular)}Table: ResourceTable = {
  id: ${table}.id,
  idKind: '${spec.idKind}',
  version: ${table}.version,
  fields: {
${spec.fields.map((field) => `    ${field.name}: { column: ${table}.${field.name}, type: '${field.type}' },`).join('\n')}
  },
};

/**
 * Reads, keyset pages and conditional writes come from ResourceCRUD; add this table's own
 * queries here (docs/development.md shows how).
 */
export class ${Item}CRUD extends ResourceCRUD<typeof ${table}> {
  constructor(context: Pick<ServiceContext, 'db' | 'queryArrays'>) {
    super(context, ${table}, ${camel(spec.singular)}Table);
  }
}
`;
}

export function serviceModule(spec: ServiceSpec): string {
  const Item = pascal(spec.singular);
  const table = camel(spec.name);
  return `/** ${Item}Service: the rules of the ${words(spec.name)} service (written by \`myapi new-service\`). */
import type { ${table} } from '../../models/${spec.name}.js';
import type { ${Item}, ${Item}Create } from '../../schemas/${spec.name}.js';
import type { ServiceContext } from '../base.js';
import { ResourceService } from '../resource/index.js';
import { ${Item}CRUD, ${camel(spec.singular)}Table } from './crud.js';

export class ${Item}Service extends ResourceService<${Item}, ${Item}Create, typeof ${table}> {
  constructor(context: ServiceContext) {
    super(context, new ${Item}CRUD(context), ${camel(spec.singular)}Table, '${title(spec.singular)}');
  }
}
`;
}

export function definitionModule(spec: ServiceSpec): string {
  const Item = pascal(spec.singular);
  return `/** The ${words(spec.name)} service as the registry sees it (written by \`myapi new-service\`). */
import { defineService } from '../definition.js';
import { ${Item}Service } from './service.js';

export { ${Item}CRUD } from './crud.js';
export { ${Item}Service };

/** Scopes by rule: ${spec.name}:read for every user, ${spec.name}:write for superusers. */
export const ${camel(spec.name)}Definition = defineService({
  name: '${spec.name}',
  needs: 'database',
  tag: { name: '${title(spec.name)}', description: 'The ${words(spec.name)} (bearer token required)' },
  create: ({ context }) => new ${Item}Service(context),
});
`;
}

export function routerModule(spec: ServiceSpec): string {
  const Item = pascal(spec.singular);
  return `/** HTTP routes of /${spec.name} (written by \`myapi new-service\`). */
import {
  ${Item}CreateSchema,
  ${Item}IdParamsSchema,
  ${Item}ListQuerySchema,
  ${Item}PatchSchema,
  ${Item}Schema,
} from '../schemas/${spec.name}.js';
import { ${camel(spec.name)}Definition } from '../services/${spec.name}/index.js';
import { resourceRoutes } from './resource.js';

/**
 * Get, list, create, replace, patch and delete, from the resource base. To add a route, wrap
 * it: \`export const router: ServiceRouter = async (app, options) => { await
 * app.register(resourceRoutes(...), options); app.get(...); }\` (docs/development.md).
 */
export const router = resourceRoutes({
  definition: ${camel(spec.name)}Definition,
  label: '${words(spec.singular)}',
  service: (services) => services.${spec.name},
  schemas: {
    item: ${Item}Schema,
    create: ${Item}CreateSchema,
    patch: ${Item}PatchSchema,
    listQuery: ${Item}ListQuerySchema,
    idParams: ${Item}IdParamsSchema,
  },
});
`;
}
