import { passwordAlgorithms, type PasswordOperation } from './password_algorithms.js';

/**
 * The hashing process: the server forks it at a lower scheduling priority, so that under CPU
 * contention password hashing yields to serving reads and to the database.
 */

interface Request {
  id: number;
  op: PasswordOperation;
  args: unknown[];
}

process.on('message', (message: Request) => {
  const operation = passwordAlgorithms[message.op] as (...args: unknown[]) => Promise<unknown>;
  operation(...message.args).then(
    (result) => process.send?.({ id: message.id, ok: true, result }),
    (error: unknown) =>
      process.send?.({ id: message.id, ok: false, error: (error as Error).message }),
  );
});

// The server is gone (or closed us): nothing left to hash for.
process.on('disconnect', () => {
  process.exit(0);
});
