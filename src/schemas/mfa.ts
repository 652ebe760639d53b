/** TypeBox schemas of two-factor authentication (TOTP) for your own account. */
import { Type, type Static } from 'typebox';

export const MfaStatusSchema = Type.Object({
  enabled: Type.Boolean({ description: 'A confirmed TOTP factor: logins ask for a code' }),
  recovery_codes_left: Type.Integer({ description: 'Unused recovery codes' }),
});

export const EnrolmentSchema = Type.Object({
  secret: Type.String({ description: 'The shared secret in base32, for typing into an app' }),
  otpauth_uri: Type.String({ description: 'The otpauth://totp/ URI the QR code holds' }),
  qr_svg: Type.String({ description: 'The URI as a QR code, an SVG document' }),
});

export const CodeSchema = Type.Object(
  {
    code: Type.String({
      minLength: 1,
      maxLength: 40,
      description: 'A 6-digit code from the app (disabling also takes a recovery code)',
      examples: ['123456'],
    }),
  },
  { additionalProperties: false },
);
export type Code = Static<typeof CodeSchema>;

export const RecoveryCodesSchema = Type.Object({
  recovery_codes: Type.Array(Type.String(), {
    description: 'Ten single-use codes for when the phone is lost; shown only this once',
  }),
});
