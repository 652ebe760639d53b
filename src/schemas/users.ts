/** TypeBox schemas of user accounts: what /users reads and writes. */
import { Type, type Static } from 'typebox';

const Name = Type.String({ minLength: 1, maxLength: 200, examples: ['test user'] });
const Email = Type.String({ format: 'email', maxLength: 254, examples: ['test_user@myapi.com'] });
/** Length and content rules are the password policy's, checked by the service with clear messages. */
const NewPassword = Type.String({
  maxLength: 4096,
  format: 'password',
  examples: ['a long passphrase'],
});

export const UserCreateSchema = Type.Object(
  {
    name: Name,
    email: Email,
    password: NewPassword,
    is_superuser: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);
export type UserCreate = Static<typeof UserCreateSchema>;

export const UserSchema = Type.Object(
  {
    user_id: Type.Integer({ examples: [1] }),
    name: Type.String({ examples: ['test user'] }),
    email: Type.String({ format: 'email', examples: ['test_user@myapi.com'] }),
    is_active: Type.Boolean({
      description: 'Disabled users cannot log in; their tokens stop working',
    }),
    is_superuser: Type.Boolean({ description: 'May hold movies:write and users:admin' }),
  },
  { $id: 'User' },
);
export type User = Static<typeof UserSchema>;

export const UserListSchema = Type.Array(Type.Ref('User'));

/** A user with the stored hash: only the auth and user services see this shape. */
export interface UserWithHash extends User {
  hashed_password: string;
  /** Null until a self-service sign-up confirms its address (MYAPI_ACCOUNTS__REQUIRE_VERIFIED_EMAIL). */
  email_verified_at?: Date | null;
}

export const MeUpdateSchema = Type.Object({ name: Name }, { additionalProperties: false });
export type MeUpdate = Static<typeof MeUpdateSchema>;

export const UserUpdateSchema = Type.Object(
  {
    name: Type.Optional(Name),
    is_active: Type.Optional(Type.Boolean()),
    is_superuser: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UserUpdate = Static<typeof UserUpdateSchema>;

export const PasswordChangeSchema = Type.Object(
  {
    current_password: Type.String({ maxLength: 4096, format: 'password' }),
    new_password: NewPassword,
  },
  { additionalProperties: false },
);
export type PasswordChange = Static<typeof PasswordChangeSchema>;

export const USERS_PAGE_DEFAULT = 50;
export const USERS_PAGE_MAX = 200;

export const UserListQuerySchema = Type.Object(
  {
    limit: Type.Integer({
      minimum: 1,
      maximum: USERS_PAGE_MAX,
      default: USERS_PAGE_DEFAULT,
      description: `Users per page (at most ${USERS_PAGE_MAX})`,
    }),
    after: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 2_147_483_647,
        description: 'Start after this user_id (the next page link carries it)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type UserListQuery = Static<typeof UserListQuerySchema>;

export const UserIdParamsSchema = Type.Object({
  user_id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }),
});
