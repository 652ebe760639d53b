/** TypeBox schemas of self-service accounts: sign-up, invitations, verification, password reset. */
import { Type, type Static } from 'typebox';

const Email = Type.String({ format: 'email', maxLength: 254, examples: ['new_user@myapi.com'] });
const Password = Type.String({
  maxLength: 4096,
  format: 'password',
  examples: ['a long passphrase'],
});
/** The random strings mailed to users are 43 characters; the bound only refuses nonsense. */
const MailedToken = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'The code from the mail (the `token` or `invitation` parameter of its link)',
});

export const SignupSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, examples: ['new user'] }),
    email: Email,
    password: Password,
    invitation: Type.Optional(MailedToken),
  },
  { additionalProperties: false },
);
export type Signup = Static<typeof SignupSchema>;

/** The answer of a request whose effect arrives by mail: the same whatever the account's state. */
export const AcceptedSchema = Type.Object(
  { detail: Type.String({ examples: ['Check your mailbox'] }) },
  { description: 'Accepted: a mail is on its way' },
);

export const InvitationCreateSchema = Type.Object(
  { email: Email },
  { additionalProperties: false },
);

export const InvitationSchema = Type.Object(
  {
    email: Type.String({ format: 'email' }),
    expires_at: Type.String({ format: 'date-time' }),
  },
  { description: 'The invitation was mailed' },
);

export const TokenBodySchema = Type.Object({ token: MailedToken }, { additionalProperties: false });

export const EmailBodySchema = Type.Object({ email: Email }, { additionalProperties: false });

export const EmailChangeSchema = Type.Object(
  {
    email: Email,
    password: Type.String({
      maxLength: 4096,
      format: 'password',
      description: 'Your current password',
    }),
  },
  { additionalProperties: false },
);

export const ResetConfirmSchema = Type.Object(
  { token: MailedToken, password: Password },
  { additionalProperties: false },
);
