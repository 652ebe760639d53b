// LISTEN/NOTIFY on a PostgreSQL server over a connection of its own, reconnecting when it drops.
import pg from 'pg';

/**
 * What a listener hands on: a notification's payload, or `undefined` when notifications may
 * have been missed (the connection dropped, or came back), so the receiver must forget what
 * it cached.
 */
export type NotificationHandler = (payload: string | undefined) => void;

const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

/**
 * LISTEN on one channel of a PostgreSQL server over a dedicated connection (a pooled one would
 * be handed to queries), reconnecting with back-off. NOTIFY is delivered at commit, so a
 * receiver never acts on a change that was rolled back.
 */
export class ChannelListener {
  private client: pg.Client | undefined;
  private closed = false;
  private retryMs = RETRY_FIRST_MS;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly handler: NotificationHandler,
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`);
  }

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({
      connectionString: this.connectionString,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
    });
    this.client = client;
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      this.handler(undefined);
      void client.end().catch(() => undefined);
      this.retry();
    };
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (message) => {
      if (message.channel === this.channel) this.handler(message.payload);
    });
    try {
      await client.connect();
      await client.query(`listen ${this.channel}`);
      this.retryMs = RETRY_FIRST_MS;
      // Changes made while we were away were not heard: start from a clean slate.
      this.handler(undefined);
    } catch {
      onLost();
    }
  }

  private retry(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      client.removeAllListeners('end');
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
    }
  }
}
