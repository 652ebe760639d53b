/** The self-service account services, built from the settings by createServices. */
import type { Settings } from '../../backend/config.js';
import { APP_NAME } from '../../const.js';
import type { ServiceContext } from '../base.js';
import { Outbox } from '../mail/outbox.js';
import { MailTemplates } from '../mail/templates.js';
import type { SelfServiceOptions, SelfServiceParts } from './common.js';
import { EmailService } from './email.js';
import { PasswordResetService } from './password_reset.js';
import { SignupService } from './signup.js';

export type { SelfServiceOptions } from './common.js';
export { EmailService, PasswordResetService, SignupService };

/** What the self-service services take from the settings (templates are read here, once). */
export interface SelfServiceSettings extends SelfServiceOptions {
  templates: MailTemplates;
  linkBaseUrl: string | undefined;
}

export function selfServiceSettings(settings: Settings): SelfServiceSettings {
  return {
    signup: settings.signup,
    requireVerifiedEmail: settings.accounts.require_verified_email,
    verifyTokenHours: settings.accounts.verify_token_hours,
    resetTokenMinutes: settings.accounts.reset_token_minutes,
    invitationDays: settings.accounts.invitation_days,
    templates: new MailTemplates(settings.mail.templates_dir),
    linkBaseUrl: settings.mail.link_base_url,
  };
}

export interface SelfServices {
  signup: SignupService;
  email: EmailService;
  passwordReset: PasswordResetService;
}

export function createSelfServices(
  context: ServiceContext,
  settings: SelfServiceSettings,
  parts: Omit<SelfServiceParts, 'outbox' | 'options'>,
): SelfServices {
  const { templates, linkBaseUrl, ...options } = settings;
  const outbox = new Outbox(context, templates, { app: APP_NAME, linkBaseUrl });
  const all: SelfServiceParts = { ...parts, outbox, options };
  return {
    signup: new SignupService(context, all),
    email: new EmailService(context, all),
    passwordReset: new PasswordResetService(context, all),
  };
}
