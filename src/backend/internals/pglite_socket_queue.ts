// Private internals of @electric-sql/pglite-socket: keeps each connection's protocol sequence whole.
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { PGlite } from '@electric-sql/pglite';

type Enqueue = (
  handlerId: number,
  message: Uint8Array,
  onData: (data: Uint8Array) => void,
) => Promise<number>;

/** The part of pglite-socket 0.2.17's private `queryQueue` that this module wraps. */
export interface QueryQueue {
  enqueue: Enqueue;
  clearQueueForHandler(handlerId: number): void;
}

/**
 * Messages of the extended query protocol (and COPY data) that wait for the one that ends
 * their sequence: Parse, Bind, Describe, Execute, Close, CopyData.
 */
const OPENS = new Set(['P', 'B', 'D', 'E', 'C', 'd'].map((c) => c.charCodeAt(0)));

/** The server's private queue, when it still has the shape this module was written against. */
export function privateQueue(server: PGLiteSocketServer): QueryQueue | undefined {
  const queue = (server as unknown as { queryQueue?: Partial<QueryQueue> }).queryQueue;
  return typeof queue?.enqueue === 'function' && typeof queue.clearQueueForHandler === 'function'
    ? (queue as QueryQueue)
    : undefined;
}

/**
 * pglite-socket (0.2.17, the latest release) queues every protocol message of every connection
 * on its own, and outside a transaction serves them first come, first served. PGlite has one
 * session, so the Parse, Bind, Execute and Sync of two connections' queries interleave in it:
 * "portal does not exist", "bind message supplies 2 parameters, but prepared statement requires
 * 1", a login answered 401 with the right password. This hands each connection's sequence to the
 * queue as one unit when its Sync (or Flush, CopyDone, CopyFail, or a simple Query) arrives, as
 * a client's single packet would be, so the queue's order can no longer split it.
 * Returns false, changing nothing, when the private queue is not there to wrap.
 */
export function keepProtocolSequencesTogether(server: PGLiteSocketServer): boolean {
  const queue = privateQueue(server);
  if (queue === undefined) return false;
  const enqueue = queue.enqueue.bind(queue);
  const clear = queue.clearQueueForHandler.bind(queue);
  const pending = new Map<number, Uint8Array[]>();

  queue.enqueue = (handlerId, message, onData) => {
    const parts = pending.get(handlerId);
    if (OPENS.has(message[0] ?? 0)) {
      if (parts === undefined) pending.set(handlerId, [message]);
      else parts.push(message);
      return Promise.resolve(0);
    }
    if (parts === undefined) return enqueue(handlerId, message, onData);
    pending.delete(handlerId);
    return enqueue(handlerId, Buffer.concat([...parts, message]), onData);
  };
  queue.clearQueueForHandler = (handlerId) => {
    pending.delete(handlerId);
    clear(handlerId);
  };
  return true;
}

/**
 * A socket server for an embedded database whose connections cannot corrupt each other. Without
 * the private queue (a pglite-socket release that changed it), it falls back to what the public
 * API guarantees: one connection at a time, so the server's own pool is the only client and other
 * processes are refused until it stops, rather than served interleaved.
 */
export function sharedSocketServer(
  db: PGlite,
  path: string,
  maxConnections: number,
  wrap: (server: PGLiteSocketServer) => boolean = keepProtocolSequencesTogether,
): { server: PGLiteSocketServer; shared: boolean } {
  const server = new PGLiteSocketServer({ db, path, maxConnections });
  if (wrap(server)) return { server, shared: true };
  return { server: new PGLiteSocketServer({ db, path, maxConnections: 1 }), shared: false };
}
