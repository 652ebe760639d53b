/**
 * The password-hashing process (see backend/hashing.ts): computes argon2 and bcrypt at a low CPU
 * priority, so that under load a hash takes only the CPU that requests leave over.
 */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { inProcessHashing, type HashReply, type HashRequest, type WorkerReady } from './hashing.js';

/**
 * A nice value belongs to each thread, and threads inherit it when they are created. The module
 * loader has already started libuv's threadpool, where the hashes run, so every thread of the
 * process is lowered, not only this one.
 */
function lowerPriority(nice: number): void {
  setPriority(nice);
  let threads: string[];
  try {
    threads = readdirSync('/proc/self/task');
  } catch {
    return; // not Linux: setPriority(0, n) already covered the whole process
  }
  for (const thread of threads) {
    try {
      setPriority(Number(thread), nice);
    } catch {
      // a thread that has just ended
    }
  }
}

async function compute(request: HashRequest): Promise<string | boolean> {
  switch (request.op) {
    case 'argon2-hash':
      return inProcessHashing.argon2Hash(request.password, request.options);
    case 'argon2-verify':
      return inProcessHashing.argon2Verify(request.hash, request.password);
    case 'bcrypt-compare':
      return inProcessHashing.bcryptCompare(request.password, request.hash);
  }
}

/**
 * The server can close the channel at any moment (its shutdown, or giving up on this process),
 * even before this process has said it is ready: nobody listens then, and without a callback the
 * failed send would be an uncaught 'error' (EPIPE, channel closed), a stack trace in the
 * server's log.
 */
function tell(message: HashReply | WorkerReady): void {
  process.send?.(message, undefined, undefined, () => undefined);
}

lowerPriority(Number(process.env.MYAPI_HASH_NICE ?? '10'));
process.on('message', (request: HashRequest) => {
  compute(request).then(
    (value) => {
      tell({ id: request.id, ok: true, value });
    },
    (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      tell({ id: request.id, ok: false, message });
    },
  );
});
// Only now may the server send: a request sent earlier could reach a preload's listener alone.
tell({ ready: true });
// The server is gone (or closed us): nothing more to compute.
process.on('disconnect', () => process.exit(0));
// A supervisor stopping the service may signal every process of it (systemd does), not only the
// server; the server finishes the logins in flight, then closes this one (above).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);
