/** The docs page and the test suite a generated service starts with. */
import { queryParameters, type FieldSpec, type ServiceSpec } from './fields.js';
import { words } from './names.js';

function typeText(field: FieldSpec): string {
  const type = field.type === 'numeric' ? `numeric(${field.precision},${field.scale})` : field.type;
  const notes = [
    field.optional ? 'may be null' : 'required',
    ...(field.unique ? ['unique'] : []),
    ...(field.defaultValue === undefined ? [] : [`default ${field.defaultValue}`]),
  ];
  return `${type}, ${notes.join(', ')}`;
}

export function docsPage(spec: ServiceSpec): string {
  const path = `/${spec.name}`;
  return `# The ${words(spec.name)} service

Written by \`myapi new-service\`; edit it as the service grows. Every route needs a bearer
token: reads the scope \`${spec.name}:read\` (every user), writes \`${spec.name}:write\`
(superusers). Errors are \`application/problem+json\`, as everywhere in the API but the
OAuth2 errors of the token endpoints.

| field | type |
| --- | --- |
| id | ${spec.idKind}, set by the database |
${spec.fields.map((field) => `| ${field.name} | ${typeText(field)} |`).join('\n')}

## Routes

| route | what it does |
| --- | --- |
| \`GET ${path}\` | one page, in id order: \`items\` and \`next_cursor\` (also in \`Link\`) |
| \`GET ${path}/{id}\` | one ${words(spec.singular)}, with its \`ETag\` |
| \`POST ${path}\` | adds one: 201 with \`Location\` and \`ETag\`; 409 if a unique field is taken |
| \`PUT ${path}/{id}\` | replaces it; needs \`If-Match\` (428 without, 412 if stale) |
| \`PATCH ${path}/{id}\` | changes the fields given; needs \`If-Match\` |
| \`DELETE ${path}/{id}\` | deletes it; needs \`If-Match\` |

The listing's filters combine with AND: ${spec.fields
    .flatMap(queryParameters)
    .map((name) => `\`${name}\``)
    .join(', ')}; \`limit\` (1 to 200, default 50) and \`cursor\`. \`NAME_from\` and \`NAME_to\` are
inclusive bounds; \`NAME_contains\` matches text in any case.

## Example

\`\`\`text
GET ${path}?limit=2 HTTP/1.1
Authorization: Bearer <access token>

200 OK
Link: <${path}?limit=2&cursor=WzJd>; rel="next"
{"items": [...], "next_cursor": "WzJd"}
\`\`\`
`;
}

export function testModule(spec: ServiceSpec): string {
  return `/** The ${words(spec.name)} service's contract over HTTP, on both databases (written by \`myapi new-service\`). */
import { describeResourceContract } from './support/resource_contract.js';

describeResourceContract(${JSON.stringify(spec, null, 2)});
`;
}
