/** TypeBox schemas of a user's logins (sessions) as the user and admins see them. */
import { Type } from 'typebox';

export const UserSessionSchema = Type.Object(
  {
    session_id: Type.String({ format: 'uuid' }),
    created_at: Type.String({ format: 'date-time', description: 'When the login happened' }),
    last_used_at: Type.String({
      format: 'date-time',
      description: 'The login or its latest refresh',
    }),
    expires_at: Type.String({
      format: 'date-time',
      description: 'When its refresh token expires unless refreshed',
    }),
    client_address: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    scope: Type.String({ description: 'The scopes granted at login' }),
    current: Type.Boolean({ description: 'The login of the token making this request' }),
  },
  { $id: 'UserSession' },
);

export const UserSessionListSchema = Type.Array(Type.Ref('UserSession'));

export const SessionIdParamsSchema = Type.Object({
  session_id: Type.String({ format: 'uuid', maxLength: 36 }),
});

export const UserSessionParamsSchema = Type.Object({
  user_id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }),
  session_id: Type.String({ format: 'uuid', maxLength: 36 }),
});
