/** TypeBox schemas every resource with versioned writes shares. */
import { Type } from 'typebox';

export const IfMatchHeadersSchema = Type.Object({
  'if-match': Type.Optional(
    Type.String({
      description:
        'Required: the `ETag` as last read (or `*` for any version); a stale one is answered with 412',
      examples: ['"3c5bb1d3a6c4b1a8f3e1f2d4c5b6a7e8"'],
    }),
  ),
});
