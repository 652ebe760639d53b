/** Keyset cursors of resource listings: the id of the last item of a page, opaque to clients. */
import { InvalidInputError } from '../../exc.js';
import type { IdKind, ResourceId } from './types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_ID: Record<Exclude<IdKind, 'uuid'>, number> = {
  serial: 2_147_483_647,
  bigserial: Number.MAX_SAFE_INTEGER,
};

export function encodeIdCursor(id: ResourceId): string {
  return Buffer.from(JSON.stringify([id]), 'utf8').toString('base64url');
}

function invalid(): InvalidInputError {
  const reason = 'not a cursor from this API';
  return new InvalidInputError(`Invalid cursor: ${reason}`, [
    { field: 'querystring.cursor', message: reason },
  ]);
}

/** The id a cursor names, if it is one this listing made. */
export function decodeIdCursor(cursor: string, kind: IdKind): ResourceId {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url');
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== 1) throw invalid();
  const [id] = parsed as unknown[];
  if (kind === 'uuid') {
    if (typeof id !== 'string' || !UUID.test(id)) throw invalid();
    return id;
  }
  if (!Number.isInteger(id) || (id as number) < 0 || (id as number) > MAX_ID[kind]) {
    throw invalid();
  }
  return id as number;
}
