/** The If-Match request header, read into the precondition a conditional write checks. */
import { InvalidInputError, PreconditionRequiredError } from '../exc.js';
import type { Precondition } from '../services/resource/index.js';

/** The strong entity tags of an If-Match header, or 'any' for `*`; weak tags never match. */
export function parseIfMatch(header: string | undefined): Precondition {
  if (header === undefined || header.trim() === '') {
    throw new PreconditionRequiredError(
      'This write needs an If-Match header: the ETag as you last read it, or *',
    );
  }
  if (header.trim() === '*') return 'any';
  const tags = header.match(/(W\/)?"[^"]*"/g) ?? [];
  const strong = tags.filter((tag) => !tag.startsWith('W/'));
  if (tags.length === 0) {
    throw new InvalidInputError('If-Match must be * or a list of quoted ETags', [
      { field: 'headers.if-match', message: 'must be * or quoted ETags' },
    ]);
  }
  // The stored digest is the tag without its quotes.
  return strong.map((tag) => tag.slice(1, -1));
}
