import { Type, type Static } from 'typebox';

export const UserCreateSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  email: Type.String({ format: 'email', maxLength: 254 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
});
export type UserCreate = Static<typeof UserCreateSchema>;

export const UserSchema = Type.Object(
  {
    user_id: Type.Integer(),
    name: Type.String(),
    email: Type.String({ format: 'email' }),
  },
  { $id: 'User' },
);
export type User = Static<typeof UserSchema>;

/** A user with the stored hash: only the auth service sees this shape. */
export interface UserWithHash extends User {
  hashed_password: string;
}
