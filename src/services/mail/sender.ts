/** The background sender: delivers the outbox's mails, retrying with back-off, in every server process. */
import type { Logger } from 'pino';
import { mailOutbox } from '../../models/mail.js';
import type { ServiceContext } from '../base.js';
import { OutboxCRUD, type OutboxRow } from './outbox.js';
import type { MailTransport } from './transport.js';

export interface SenderOptions {
  /** Attempts before a mail is given up on (kept, marked failed). */
  maxAttempts: number;
  /** The wait after the first failure; it doubles with each further one. */
  retryBaseSeconds: number;
  /** How often the outbox is looked at when it had nothing due. */
  pollMs: number;
}

const BATCH = 10;
/** Longer than a send can take with the transport's timeouts: then another sender may retry it. */
const LEASE_SECONDS = 120;
const MAX_RETRY_SECONDS = 6 * 3600;

/** The wait before attempt `attempts + 1`: base, 2 base, 4 base ... capped at six hours. */
export function retryDelaySeconds(baseSeconds: number, attempts: number): number {
  return Math.min(MAX_RETRY_SECONDS, baseSeconds * 2 ** Math.min(Math.max(attempts - 1, 0), 30));
}

/** An error as the log and the row may keep it: its code and message, never the mail. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
}

export class MailSender {
  private readonly crud: OutboxCRUD;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(
    context: ServiceContext,
    private readonly transport: MailTransport,
    private readonly logger: Logger,
    private readonly options: SenderOptions,
  ) {
    this.crud = new OutboxCRUD(context, mailOutbox);
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops looking; a send under way finishes first. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
    this.transport.close();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round().then((full) => {
        this.running = undefined;
        // A full batch means more may be due: look again at once.
        this.schedule(full ? 0 : this.options.pollMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  /** One batch: true when it was full. Never throws: a database hiccup waits for the next poll. */
  private async round(): Promise<boolean> {
    let mails: OutboxRow[];
    try {
      mails = await this.crud.claim(BATCH, LEASE_SECONDS);
    } catch (error) {
      this.logger.warn({ reason: describe(error) }, 'mail outbox unavailable; retrying');
      return false;
    }
    for (const mail of mails) await this.deliver(mail);
    return mails.length === BATCH;
  }

  private async deliver(mail: OutboxRow): Promise<void> {
    const fields = { mailId: mail.mail_id, kind: mail.kind, attempt: mail.attempts };
    try {
      await this.transport.send({
        to: mail.recipient,
        subject: mail.subject,
        text: mail.text_body ?? '',
        html: mail.html_body ?? '',
      });
    } catch (error) {
      const reason = describe(error);
      try {
        if (mail.attempts >= this.options.maxAttempts) {
          await this.crud.markFailed(mail.mail_id, reason);
          this.logger.error(
            { ...fields, reason },
            'mail not delivered: gave up after the last attempt',
          );
        } else {
          const retryIn = retryDelaySeconds(this.options.retryBaseSeconds, mail.attempts);
          await this.crud.markRetry(mail.mail_id, retryIn, reason);
          this.logger.warn(
            { ...fields, reason, retryInSeconds: retryIn },
            'mail not delivered; will retry',
          );
        }
      } catch (markError) {
        // The lease brings it back: the mail is retried, not lost.
        this.logger.warn({ ...fields, reason: describe(markError) }, 'mail outbox unavailable');
      }
      return;
    }
    try {
      await this.crud.markSent(mail.mail_id);
      this.logger.info(fields, 'mail delivered');
    } catch (error) {
      // Delivered but not recorded: after the lease it is sent again, a duplicate, never a loss.
      this.logger.warn({ ...fields, reason: describe(error) }, 'mail delivered but not recorded');
    }
  }
}
