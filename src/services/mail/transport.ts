/** How a mail leaves: over SMTP (nodemailer), or into the log in development mode. */
import nodemailer, { type Transporter } from 'nodemailer';
import type { Logger } from 'pino';

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface MailTransport {
  /** Resolves once the server accepted the mail; rejects with the reason otherwise. */
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/** Bounded, so a stuck SMTP server holds a mail for seconds, not nodemailer's minutes. */
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 };

export class SmtpTransport implements MailTransport {
  private readonly transporter: Transporter;

  constructor(url: string, from: string) {
    this.transporter = nodemailer.createTransport({ url, ...SMTP_TIMEOUTS }, { from });
  }

  async send(mail: OutgoingMail): Promise<void> {
    await this.transporter.sendMail(mail);
  }

  close(): void {
    this.transporter.close();
  }
}

/**
 * Development mode (no MYAPI_MAIL__SMTP_URL): each mail, body included, is an info line of the
 * log, since its link or code is what a developer needs. The one place a log holds a secret.
 */
export class LogTransport implements MailTransport {
  constructor(private readonly logger: Logger) {}

  send(mail: OutgoingMail): Promise<void> {
    this.logger.info(
      { mail: { to: mail.to, subject: mail.subject, text: mail.text } },
      'mail (development mode: MYAPI_MAIL__SMTP_URL is not set, so mails go to this log)',
    );
    return Promise.resolve();
  }

  close(): void {}
}
