// A real SMTP server for the mail tests: Debian's python3-aiosmtpd, writing each message to a Maildir.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { delay, freePort } from './process.js';
import { scaled } from './timeouts.js';

/** Debian's interpreter: python3-aiosmtpd is installed for it, not for a pyenv one. */
const PYTHON = '/usr/bin/python3';

export interface ReceivedMail {
  to: string;
  from: string;
  subject: string;
  text: string;
  html: string;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

/** aiosmtpd on a private port, delivering into a Maildir of its own (written atomically). */
export class SmtpServer {
  private process: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'myapi-smtp-'));
  private readonly seen = new Map<string, ReceivedMail>();

  private constructor(readonly port: number) {}

  static async start(): Promise<SmtpServer> {
    const server = new SmtpServer(await freePort());
    await server.resume();
    return server;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port and Maildir. */
  async resume(): Promise<void> {
    const child = spawn(
      PYTHON,
      [
        '-m',
        'aiosmtpd',
        '-n',
        '-l',
        `127.0.0.1:${this.port}`,
        '-c',
        'aiosmtpd.handlers.Mailbox',
        join(this.dir, 'maildir'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    this.process = child;
    const deadline = Date.now() + scaled(10_000);
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`aiosmtpd did not start: ${stderr}`);
      }
      await delay(50);
    }
  }

  /** Stops the server (the mails it received stay readable). */
  async pause(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    while (await accepts(this.port)) await delay(20);
  }

  async close(): Promise<void> {
    await this.pause();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Every mail received so far, oldest first. */
  async received(): Promise<ReceivedMail[]> {
    const folder = join(this.dir, 'maildir', 'new');
    let names: string[];
    try {
      names = readdirSync(folder).sort();
    } catch {
      return [];
    }
    for (const name of names) {
      if (this.seen.has(name)) continue;
      const parsed = await simpleParser(readFileSync(join(folder, name)));
      const address = (value: typeof parsed.to) =>
        (Array.isArray(value) ? value : value === undefined ? [] : [value])
          .flatMap((list) => list.value.map((entry) => entry.address ?? ''))
          .join(',');
      this.seen.set(name, {
        to: address(parsed.to),
        from: parsed.from?.text ?? '',
        subject: parsed.subject ?? '',
        text: parsed.text ?? '',
        html: typeof parsed.html === 'string' ? parsed.html : '',
      });
    }
    return [...this.seen.values()];
  }

  /** The first mail to `to` matching `subject`, waiting for it to arrive. */
  async waitFor(to: string, subject: RegExp, timeoutMs = scaled(15_000)): Promise<ReceivedMail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.received()).find(
        (mail) => mail.to === to && subject.test(mail.subject),
      );
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        const all = (await this.received()).map((m) => `${m.to}: ${m.subject}`);
        throw new Error(`no mail to ${to} matching ${subject} (got: ${all.join('; ')})`);
      }
      await delay(50);
    }
  }

  /** The `count`th mail to `to` (1-based), waiting for it to arrive. */
  async waitForCount(to: string, count: number, timeoutMs = scaled(15_000)): Promise<ReceivedMail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const mails = await this.to(to);
      const wanted = mails[count - 1];
      if (wanted !== undefined) return wanted;
      if (Date.now() > deadline) throw new Error(`mail ${count} to ${to} did not arrive`);
      await delay(50);
    }
  }

  /** Every mail to `to`, after `waitFor` saw the ones expected. */
  async to(address: string): Promise<ReceivedMail[]> {
    return (await this.received()).filter((mail) => mail.to === address);
  }
}

/** The code a mail carries: the line after "with this code:" (or invitation code). */
export function codeIn(mail: ReceivedMail): string {
  const match = /code:\s*\n\s*\n?([A-Za-z0-9_-]{20,})/.exec(mail.text);
  if (match?.[1] === undefined) throw new Error(`no code in mail: ${mail.text}`);
  return match[1];
}
