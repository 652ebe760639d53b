/** PasswordPolicy: the OWASP ASVS password rules the HTTP API enforces and the CLI warns about. */
import { COMMON_PASSWORDS_TEXT, COMMON_PASSWORDS_TOP } from '../data/common_passwords.js';

/**
 * The password rules of OWASP ASVS (V2.1): a minimum length, a maximum of at least 64 with no
 * truncation, no composition rules, and no password from a list of the most used ones. Lengths
 * count Unicode code points, so an accented letter or an emoji is one character; spaces count too.
 */

export const DEFAULT_MIN_PASSWORD_LENGTH = 8;
export const DEFAULT_MAX_PASSWORD_LENGTH = 128;
/** The largest minimum an operator can configure. */
export const MIN_PASSWORD_LENGTH_LIMIT = 128;
/** ASVS asks that passwords of at least 64 characters be allowed. */
export const MAX_PASSWORD_LENGTH_FLOOR = 64;
/** The hard upper bound an operator can configure. */
export const MAX_PASSWORD_LENGTH_LIMIT = 1024;

export interface PasswordPolicyOptions {
  /** Default 8; an integer from 1 to 128. */
  minLength?: number;
  /** Default 128; an integer from max(64, minLength) to 1024. */
  maxLength?: number;
}

/** What the password must not equal (compared case-insensitively). */
export interface PasswordContext {
  email?: string;
  name?: string;
}

let commonSet: ReadonlySet<string> | undefined;

/** The shipped list of most used passwords (lowercase), built on first use and shared by all. */
export function commonPasswords(): ReadonlySet<string> {
  commonSet ??= new Set(COMMON_PASSWORDS_TEXT.split('\n'));
  return commonSet;
}

/** Code points in `text`, counted without building an array (a lone surrogate counts as one). */
export function codePointLength(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

function characters(n: number): string {
  return n === 1 ? '1 character' : `${n} characters`;
}

function checkedLength(name: string, value: number, low: number, high: number): number {
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new RangeError(
      `password policy: ${name} must be an integer from ${low} to ${high}, got ${String(value)}`,
    );
  }
  return value;
}

export class PasswordPolicy {
  readonly minLength: number;
  readonly maxLength: number;

  constructor(options: PasswordPolicyOptions = {}) {
    this.minLength = checkedLength(
      'minLength',
      options.minLength ?? DEFAULT_MIN_PASSWORD_LENGTH,
      1,
      MIN_PASSWORD_LENGTH_LIMIT,
    );
    this.maxLength = checkedLength(
      'maxLength',
      options.maxLength ?? DEFAULT_MAX_PASSWORD_LENGTH,
      Math.max(MAX_PASSWORD_LENGTH_FLOOR, this.minLength),
      MAX_PASSWORD_LENGTH_LIMIT,
    );
  }

  /** Every reason the password is not acceptable, as user-facing sentences; empty when it is fine. */
  problems(password: string, context: PasswordContext = {}): string[] {
    const problems: string[] = [];
    const length = codePointLength(password);
    if (length < this.minLength) {
      problems.push(`password must be at least ${characters(this.minLength)}`);
    }
    if (length > this.maxLength) {
      problems.push(`password must be at most ${characters(this.maxLength)} (it has ${length})`);
      // No listed password is that long: the other rules cannot add anything useful.
      return problems;
    }
    const lower = password.toLowerCase();
    if (commonPasswords().has(lower)) {
      problems.push(
        `password is too common (it is in a list of the ${COMMON_PASSWORDS_TOP.toLocaleString('en-US')} most used passwords)`,
      );
    }
    const email = context.email?.trim().toLowerCase() ?? '';
    if (email !== '') {
      const at = email.lastIndexOf('@');
      const local = at > 0 ? email.slice(0, at) : '';
      if (lower === email || (local !== '' && lower === local)) {
        problems.push('password must not be your email address or the part of it before the @');
      }
    }
    const name = context.name?.trim().toLowerCase() ?? '';
    if (name !== '' && lower === name) {
      problems.push('password must not be your name');
    }
    return problems;
  }
}
