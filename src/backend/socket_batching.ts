import type { PGLiteSocketServer } from '@electric-sql/pglite-socket';

type Enqueue = (
  handlerId: number,
  message: Uint8Array,
  onData: (data: Uint8Array) => void,
) => Promise<number>;

interface QueryQueue {
  enqueue: Enqueue;
  clearQueueForHandler(handlerId: number): void;
}

/**
 * Messages of the extended query protocol (and COPY data) that wait for the one that ends
 * their sequence: Parse, Bind, Describe, Execute, Close, CopyData.
 */
const OPENS = new Set(['P', 'B', 'D', 'E', 'C', 'd'].map((c) => c.charCodeAt(0)));

/**
 * pglite-socket 0.2.17 queues every protocol message of every connection on its own, and outside
 * a transaction serves them first come, first served. PGlite has one session, so the Parse,
 * Bind, Execute and Sync of two connections' queries interleave in it: "portal does not exist",
 * "bind message supplies 2 parameters, but prepared statement requires 1", a login answered 401
 * with the right password. This hands each connection's sequence to the queue as one unit when
 * its Sync (or Flush, CopyDone, CopyFail, or a simple Query) arrives, as a client's single
 * packet would be, so the queue's order can no longer split it.
 */
export function keepProtocolSequencesTogether(server: PGLiteSocketServer): void {
  const queue = (server as unknown as { queryQueue: QueryQueue }).queryQueue;
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
}
