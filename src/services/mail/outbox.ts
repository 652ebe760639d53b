/** The mail outbox: mails are rows written in the transaction of the change that sends them. */
import { and, asc, eq, isNull, lte, sql } from 'drizzle-orm';
import type { Executor } from '../../backend/database.js';
import { mailOutbox } from '../../models/mail.js';
import { AppCRUD, type ServiceContext } from '../base.js';
import type { MailKind, MailTemplates, MailValues } from './templates.js';

export type OutboxRow = typeof mailOutbox.$inferSelect;

/** What the bodies of a row become once they are no longer needed. */
const EMPTIED = { text_body: null, html_body: null } as const;
/** The last error kept on a row: enough to recognise it, never a body. */
const ERROR_LENGTH = 500;

export class OutboxCRUD extends AppCRUD<typeof mailOutbox> {
  /**
   * Takes up to `limit` due mails for this sender: each gets one more attempt and a lease (it is
   * not due again until the lease ends, so a sender that dies mid-send leaves it to another).
   * SKIP LOCKED lets several processes claim at once without waiting for or sharing a row.
   */
  async claim(limit: number, leaseSeconds: number, tx?: Executor): Promise<OutboxRow[]> {
    const due = this.on(tx)
      .select({ id: mailOutbox.mail_id })
      .from(mailOutbox)
      .where(
        and(
          isNull(mailOutbox.sent_at),
          isNull(mailOutbox.failed_at),
          lte(mailOutbox.next_attempt_at, sql`now()`),
        ),
      )
      .orderBy(asc(mailOutbox.next_attempt_at))
      .limit(limit)
      .for('update', { skipLocked: true });
    return this.on(tx)
      .update(mailOutbox)
      .set({
        attempts: sql`${mailOutbox.attempts} + 1`,
        next_attempt_at: sql`now() + make_interval(secs => ${leaseSeconds})`,
      })
      .where(sql`${mailOutbox.mail_id} in ${due}`)
      .returning();
  }

  async markSent(mailId: number): Promise<void> {
    await this.db
      .update(mailOutbox)
      .set({ ...EMPTIED, sent_at: sql`now()`, last_error: null })
      .where(eq(mailOutbox.mail_id, mailId));
  }

  async markRetry(mailId: number, delaySeconds: number, error: string): Promise<void> {
    await this.db
      .update(mailOutbox)
      .set({
        next_attempt_at: sql`now() + make_interval(secs => ${delaySeconds})`,
        last_error: error.slice(0, ERROR_LENGTH),
      })
      .where(eq(mailOutbox.mail_id, mailId));
  }

  /** Given up: the row stays, marked failed with its last error, without its bodies. */
  async markFailed(mailId: number, error: string): Promise<void> {
    await this.db
      .update(mailOutbox)
      .set({ ...EMPTIED, failed_at: sql`now()`, last_error: error.slice(0, ERROR_LENGTH) })
      .where(eq(mailOutbox.mail_id, mailId));
  }
}

/** The values every template may use besides its own. */
export interface MailContext {
  app: string;
  /** Links in mails start with this; without it, mails carry the code only. */
  linkBaseUrl: string | undefined;
}

/** Renders a template and writes it to the outbox, in the caller's transaction. */
export class Outbox {
  private readonly crud: OutboxCRUD;

  constructor(
    context: ServiceContext,
    private readonly templates: MailTemplates,
    private readonly mailContext: MailContext,
  ) {
    this.crud = new OutboxCRUD(context, mailOutbox);
  }

  /** A link to `path` with `?param=value`, or undefined when no base URL is set. */
  link(path: string, param: string, value: string): string | undefined {
    const base = this.mailContext.linkBaseUrl;
    if (base === undefined) return undefined;
    const url = new URL(path.replace(/^\//, ''), base.endsWith('/') ? base : `${base}/`);
    url.searchParams.set(param, value);
    return url.toString();
  }

  async enqueue(kind: MailKind, to: string, values: MailValues, tx: Executor): Promise<void> {
    const mail = this.templates.render(kind, { app: this.mailContext.app, ...values });
    await this.crud.addOne(
      { kind, recipient: to, subject: mail.subject, text_body: mail.text, html_body: mail.html },
      tx,
    );
  }
}
