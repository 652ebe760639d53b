/** The database settings of a scaled-out deployment: PgBouncer, a direct LISTEN, read replicas. */
import { Type } from 'typebox';

const POSTGRES_URL = '^postgres(ql)?://.+$';

export const SCALE_OUT_SETTINGS = {
  // Named statements are parsed once per server connection; a pooler in transaction mode hands
  // each transaction another connection, where the name is unknown (PgBouncer before 1.21).
  prepared_statements: Type.Boolean({
    default: true,
    description: 'true or false (false behind PgBouncer in transaction pooling mode)',
  }),
  // LISTEN needs a session of its own, which transaction pooling never gives: a direct DSN.
  listen_dsn: Type.Optional(
    Type.String({ pattern: POSTGRES_URL, description: 'a postgresql:// URL' }),
  ),
  replicas: Type.String({
    default: '',
    pattern: '^(|postgres(ql)?://[^,\\s]+(\\s*,\\s*postgres(ql)?://[^,\\s]+)*)$',
    description: 'empty (no replicas) or comma-separated postgresql:// URLs of streaming replicas',
  }),
  // How often each replica is probed (reachable, in recovery, how far it has replayed).
  replica_check_ms: Type.Integer({
    default: 1000,
    minimum: 50,
    maximum: 60_000,
    description: 'an integer of milliseconds from 50 to 60000',
  }),
  // How long a client that wrote a movie reads from the primary unless a replica has replayed
  // its write: the bound of the read-your-writes rule.
  read_your_writes_ms: Type.Integer({
    default: 10_000,
    minimum: 0,
    maximum: 600_000,
    description: 'an integer of milliseconds from 0 to 600000',
  }),
};
