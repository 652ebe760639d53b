// Apps of the self-service account tests: real sockets, a real SMTP server, the outbox readable.
import type { Settings } from '../../src/backend/config.js';
import { mailOutbox } from '../../src/models/mail.js';
import type { UserCreate } from '../../src/schemas/users.js';
import { accountOptions, createServices } from '../../src/services/index.js';
import type { App } from '../../src/app.js';
import { appOn } from './apps.js';
import type { LogCapture, TestDatabase } from './databases.js';
import type { SmtpServer } from './smtp.js';

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown> | null;
  text: string;
}

export interface AccountsApp {
  app: App;
  logs: LogCapture;
  url: string;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}

/** Settings with mail through `smtp` (fast polling and retries) and the given changes. */
export function mailSettings(
  t: TestDatabase,
  smtp: SmtpServer | undefined,
  mail: Partial<Settings['mail']> = {},
): Partial<Settings> {
  return {
    mail: {
      ...t.settings.mail,
      ...(smtp === undefined ? {} : { smtp_url: smtp.url }),
      from: 'myapi <no-reply@myapi.test>',
      poll_ms: 50,
      retry_base_seconds: 0.1,
      link_base_url: 'https://app.myapi.test/account',
      ...mail,
    },
  };
}

/** An app listening on a free port of 127.0.0.1 with these settings changed. */
export async function listenOn(t: TestDatabase, changes: Partial<Settings>): Promise<AccountsApp> {
  const { app, logs } = await appOn(t, changes);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${address}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      text,
      body: text === '' ? null : (JSON.parse(text) as Record<string, unknown>),
    };
  };
  return { app, logs, url: address, post, close: () => app.close() };
}

/** A user made as an operator makes one (the CLI's path): verified. */
export async function makeUser(t: TestDatabase, user: UserCreate): Promise<void> {
  await createServices(t.database, { accounts: accountOptions(t.settings) }).users.createUser(user);
}

export function outboxRows(t: TestDatabase) {
  return t.database.db.select().from(mailOutbox).orderBy(mailOutbox.mail_id);
}

/** The password grant over the socket: the status and body. */
export async function loginOver(url: string, username: string, password: string) {
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password }).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
