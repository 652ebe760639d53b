import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import {
  keepProtocolSequencesTogether,
  privateQueue,
  sharedSocketServer,
} from '../src/backend/internals/pglite_socket_queue.js';

/**
 * Guards of the private internals this project still uses (src/backend/internals/): each fails
 * when the installed package no longer has the shape the code was written against, so an
 * upgrade is noticed here rather than as interleaved queries in production.
 */
describe("pglite-socket's private query queue", () => {
  it('is there, with the methods that keep a connection’s protocol sequence whole', async () => {
    const db = await PGlite.create();
    try {
      const server = new PGLiteSocketServer({ db, path: '/nonexistent/socket' });
      const queue = privateQueue(server);
      assert.ok(
        queue,
        'PGLiteSocketServer has no queryQueue with enqueue and clearQueueForHandler',
      );
      // enqueue(handlerId, message, onData) is what the wrapper replaces and calls.
      assert.equal(queue.enqueue.length, 3);
      assert.equal(queue.clearQueueForHandler.length, 1);
      assert.equal(keepProtocolSequencesTogether(server), true);
      const shared = sharedSocketServer(db, '/nonexistent/socket', 9);
      assert.deepEqual([shared.shared, shared.server.getStats().maxConnections], [true, 9]);
    } finally {
      await db.close();
    }
  });

  it('falls back to one connection at a time, through the public API, when it is gone', async () => {
    const db = await PGlite.create();
    try {
      const gone = new PGLiteSocketServer({ db, path: '/nonexistent/socket' });
      Object.defineProperty(gone, 'queryQueue', { value: undefined });
      assert.equal(keepProtocolSequencesTogether(gone), false);
      const { server, shared } = sharedSocketServer(db, '/nonexistent/socket', 9, () => false);
      assert.equal(shared, false);
      assert.equal(server.getStats().maxConnections, 1);
    } finally {
      await db.close();
    }
  });
});
