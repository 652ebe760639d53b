// Apps of the self-service account tests: real sockets, a real SMTP server, the outbox readable.
import assert from 'node:assert/strict';
import type { Settings } from '../../src/backend/config.js';
import { asc, eq } from 'drizzle-orm';
import { auditEvents } from '../../src/models/audit.js';
import { mailOutbox } from '../../src/models/mail.js';
import { users } from '../../src/models/users.js';
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

/** The audit log's rows of one event, oldest first, with the email of the user each names. */
export function auditRows(t: TestDatabase, event: string) {
  return t.database.db
    .select({
      outcome: auditEvents.outcome,
      reason: auditEvents.reason,
      email: users.email,
      details: auditEvents.details,
    })
    .from(auditEvents)
    .leftJoin(users, eq(users.user_id, auditEvents.user_id))
    .where(eq(auditEvents.event, event))
    .orderBy(asc(auditEvents.audit_id));
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

let clients = 0;
/** A client address per request group (with trust_proxy), so throttle counters belong to one test. */
export function from(): Record<string, string> {
  const n = clients++;
  return {
    'x-forwarded-for': `10.${(process.pid % 200) + 20}.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`,
  };
}

/** An app with mail through `smtp`, trusting X-Forwarded-For, for the length of `work`. */
export async function withServer(
  t: TestDatabase,
  smtp: SmtpServer,
  changes: Partial<Settings>,
  work: (server: AccountsApp) => Promise<void>,
): Promise<void> {
  const server = await listenOn(t, { ...mailSettings(t, smtp), trust_proxy: 'true', ...changes });
  try {
    await work(server);
  } finally {
    await server.close();
  }
}

/** An Authorization header from a password login over the socket. */
export async function bearer(
  server: AccountsApp,
  email: string,
  password: string,
): Promise<string> {
  const login = await loginOver(server.url, email, password);
  assert.equal(login.status, 200, JSON.stringify(login.body));
  return `Bearer ${String(login.body.access_token)}`;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}
