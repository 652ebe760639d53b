/** TypeBox schemas of the security audit log (GET /audit). */
import { Type, type Static } from 'typebox';
import { AUDIT_EVENTS } from '../services/audit/crud.js';

export const AUDIT_PAGE_DEFAULT = 50;
export const AUDIT_PAGE_MAX = 200;
const MAX_ID = 2_147_483_647;

export const AuditEventSchema = Type.Object(
  {
    audit_id: Type.Integer({ description: 'Increases with every event' }),
    at: Type.String({ format: 'date-time', description: 'When it happened (database clock)' }),
    event: Type.String({ examples: ['login'], description: `One of ${AUDIT_EVENTS.join(', ')}` }),
    outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
    reason: Type.Union([Type.String(), Type.Null()], {
      description: 'Why it failed (wrong_password, unknown_user, throttle...) or why it happened',
    }),
    user_id: Type.Union([Type.Integer(), Type.Null()], { description: 'The account concerned' }),
    actor_id: Type.Union([Type.Integer(), Type.Null()], {
      description: 'Who acted (an admin, or the user themself); null from the CLI',
    }),
    client_address: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(
      Type.String(),
      Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]),
      { description: 'Identifiers and facts (a session id, the fields changed); never a secret' },
    ),
  },
  { $id: 'AuditEvent' },
);

export const AuditListSchema = Type.Array(Type.Ref('AuditEvent'));

export const AuditQuerySchema = Type.Object(
  {
    user_id: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_ID, description: 'Only events about this user' }),
    ),
    event: Type.Optional(Type.Enum(AUDIT_EVENTS, { description: 'Only events of this kind' })),
    since: Type.Optional(
      Type.String({ format: 'date-time', description: 'Only events at or after this instant' }),
    ),
    until: Type.Optional(
      Type.String({ format: 'date-time', description: 'Only events at or before this instant' }),
    ),
    limit: Type.Integer({
      minimum: 1,
      maximum: AUDIT_PAGE_MAX,
      default: AUDIT_PAGE_DEFAULT,
      description: `Events per page (at most ${AUDIT_PAGE_MAX})`,
    }),
    before: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'Only events older than this audit_id (the next page link carries it)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuerySchema>;
