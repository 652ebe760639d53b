/**
 * The text of a personal access token: `myapi_pat_`, 32 random bytes in base62 (43 characters)
 * and a CRC32 of them in base62 (6 characters), GitHub's scheme. The prefix lets secret scanners
 * recognise a leaked token; the checksum lets the server refuse a mistyped or made-up one
 * without reading the database.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const ACCESS_TOKEN_PREFIX = 'myapi_pat_';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 62^43 > 2^256: every 32-byte value fits in 43 base62 digits. */
const SECRET_DIGITS = 43;
/** 62^6 > 2^32: every CRC32 fits in 6 base62 digits. */
const CHECKSUM_DIGITS = 6;
const SHAPE = new RegExp(
  `^${ACCESS_TOKEN_PREFIX}([0-9A-Za-z]{${SECRET_DIGITS}})([0-9A-Za-z]{${CHECKSUM_DIGITS}})$`,
);
/** How much of a token the listings show, enough to tell one's tokens apart. */
const SHOWN_LENGTH = ACCESS_TOKEN_PREFIX.length + 6;

function base62(value: bigint, digits: number): string {
  let text = '';
  let rest = value;
  for (let i = 0; i < digits; i++) {
    text = ALPHABET.charAt(Number(rest % 62n)) + text;
    rest /= 62n;
  }
  return text;
}

function checksum(secret: string): string {
  return base62(BigInt(crc32(secret)), CHECKSUM_DIGITS);
}

/** A new token's full text, shown once to its owner. */
export function newAccessTokenSecret(): string {
  const secret = base62(BigInt(`0x${randomBytes(32).toString('hex')}`), SECRET_DIGITS);
  return `${ACCESS_TOKEN_PREFIX}${secret}${checksum(secret)}`;
}

/** Whether a text is meant as a personal access token (it may still be mistyped). */
export function looksLikeAccessToken(text: string): boolean {
  return text.startsWith(ACCESS_TOKEN_PREFIX);
}

/** Whether a text has the shape and a matching checksum: a check that costs no query. */
export function isWellFormedAccessToken(text: string): boolean {
  const match = SHAPE.exec(text);
  return match?.[1] !== undefined && checksum(match[1]) === match[2];
}

/** What the database keeps: a SHA-256 of the text (its 256 random bits need no slow hash). */
export function hashAccessToken(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** The start of a token that listings show. */
export function shownPrefix(text: string): string {
  return text.slice(0, SHOWN_LENGTH);
}
