/** The mail sender of a server process, built from the settings. */
import type { Logger } from 'pino';
import type { Settings } from '../../backend/config.js';
import type { ServiceContext } from '../base.js';
import { MailSender } from './sender.js';
import { LogTransport, SmtpTransport, type MailTransport } from './transport.js';

export { MailSender } from './sender.js';

/** SMTP when MYAPI_MAIL__SMTP_URL is set; otherwise development mode, said so in the log. */
export function createMailSender(
  settings: Settings,
  context: ServiceContext,
  logger: Logger,
): MailSender {
  const { mail } = settings;
  let transport: MailTransport;
  if (mail.smtp_url === undefined) {
    logger.info(
      'mail in development mode: MYAPI_MAIL__SMTP_URL is not set, so each mail (its links and ' +
        'codes included) is written to this log at info level instead of being sent',
    );
    transport = new LogTransport(logger);
  } else {
    transport = new SmtpTransport(mail.smtp_url, mail.from);
  }
  return new MailSender(context, transport, logger, {
    maxAttempts: mail.max_attempts,
    retryBaseSeconds: mail.retry_base_seconds,
    pollMs: mail.poll_ms,
  });
}
