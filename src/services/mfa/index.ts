/** MfaService: TOTP two-factor enrolment, recovery codes, the login's second step, and resets. */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import * as OTPAuth from 'otpauth';
import QRCode from 'qrcode';
import type { Executor } from '../../backend/database.js';
import { APP_NAME } from '../../const.js';
import { AppError, ConflictError, ForbiddenError, NotFoundError, OAuthError } from '../../exc.js';
import { auditEvents } from '../../models/audit.js';
import { mfaFactors } from '../../models/mfa.js';
import { AuditCRUD, type ClientInfo } from '../audit/crud.js';
import { AppService, type ServiceContext } from '../base.js';
import { MfaCRUD, type Factor } from './crud.js';
import type { SecretBox } from './secret_box.js';

export { SecretBox } from './secret_box.js';

/** How long an mfa_token lasts, and how many codes it may be tried with. */
export const MFA_TOKEN_SECONDS = 300;
export const MFA_TOKEN_ATTEMPTS = 5;
export const RECOVERY_CODE_COUNT = 10;
const PERIOD_SECONDS = 30;
/** Codes of the step before and after the current one pass: clocks drift, people type slowly. */
const WINDOW = 1;
/** Recovery code letters: no 0/o, 1/l/i to misread. */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

export interface Enrolment {
  secret: string;
  otpauth_uri: string;
  qr_svg: string;
}

/** The second factor a login step presents: a TOTP code or a recovery code. */
export type SecondFactor = { otp: string } | { recoveryCode: string };

/** Too many wrong codes: the user waits (429 with Retry-After). */
export class TooManyCodesError extends AppError {
  constructor(retryAfterSeconds: number) {
    super(429, `Too many wrong codes; retry in ${retryAfterSeconds} s`, {
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const normaliseRecovery = (code: string) => code.toLowerCase().replace(/[\s-]/g, '');

function newRecoveryCode(): string {
  const letters = Array.from({ length: 10 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
  return `${letters.slice(0, 5)}-${letters.slice(5)}`;
}

type Verdict = { ok: true; step?: number } | { ok: false; reason: string };

/** What a code check decided inside its transaction; thrown after the commit when not ok. */
type Outcome<T> = { ok: true; value: T } | { ok: false; error: Error };

export class MfaService extends AppService {
  private readonly crud: MfaCRUD;
  private readonly audit: AuditCRUD;

  /** `box` seals secrets: only the server has it (the CLI only resets factors). */
  constructor(
    context: ServiceContext,
    private readonly box?: SecretBox,
  ) {
    super(context);
    this.crud = new MfaCRUD(context, mfaFactors);
    this.audit = new AuditCRUD(context, auditEvents);
  }

  private sealer(): SecretBox {
    if (this.box === undefined) throw new Error('two-factor secrets need the token key');
    return this.box;
  }

  /** Has the user a confirmed factor (the password grant then asks for a code)? */
  async enrolled(userId: number): Promise<boolean> {
    return this.crud.hasConfirmedFactor(userId);
  }

  /** A new secret for the user, shown once as a URI and a QR code; confirmed by a first code. */
  async enrol(user: { userId: number; email: string }, client: ClientInfo): Promise<Enrolment> {
    const secret = new OTPAuth.Secret({ size: 20 }).base32;
    const saved = await this.transaction(async (tx) => {
      if (!(await this.crud.saveUnconfirmed(user.userId, this.sealer().seal(secret), tx))) {
        return false;
      }
      await this.audit.record(
        { event: 'mfa.enrol', userId: user.userId, actorId: user.userId, client },
        tx,
      );
      return true;
    });
    if (!saved)
      throw new ConflictError('Two-factor authentication is already on; disable it first');
    const totp = this.totp(secret, user.email);
    const uri = totp.toString();
    return { secret, otpauth_uri: uri, qr_svg: await QRCode.toString(uri, { type: 'svg' }) };
  }

  /** Turns the factor on with a first code; returns the recovery codes, shown only this once. */
  async confirm(userId: number, code: string, client: ClientInfo): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    return this.settle(
      userId,
      'mfa.confirm',
      client,
      (factor) => {
        if (factor.confirmed) throw new ConflictError('Two-factor authentication is already on');
        return this.checkTotp(factor, code);
      },
      async (tx) => {
        await this.crud.replaceRecoveryCodes(userId, codes.map(normaliseRecovery).map(sha256), tx);
        return codes;
      },
    );
  }

  /** Turns the factor off; needs a current code or a recovery code. */
  async disable(userId: number, code: string, client: ClientInfo): Promise<void> {
    await this.settle(
      userId,
      'mfa.disable',
      client,
      (factor, tx) => {
        if (!factor.confirmed) throw new NotFoundError('Two-factor authentication is not on');
        return this.checkEither(userId, factor, code, tx);
      },
      async (tx) => {
        await this.crud.remove(userId, tx);
      },
    );
  }

  /** An operator or admin removes a user's factor (lost phone and codes); false if none. */
  async reset(
    userId: number,
    by: { actorId?: number; client?: ClientInfo } = {},
  ): Promise<boolean> {
    return this.transaction(async (tx) => {
      if (!(await this.crud.remove(userId, tx))) return false;
      await this.audit.record(
        { event: 'mfa.reset', userId, actorId: by.actorId, client: by.client },
        tx,
      );
      return true;
    });
  }

  /** After a right password: the mfa_token the client completes the login with. */
  async challenge(userId: number, scope: string, client: ClientInfo): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await this.transaction(async (tx) => {
      await this.crud.createChallenge(
        { hash: sha256(token), userId, scope, lifetimeSeconds: MFA_TOKEN_SECONDS },
        tx,
      );
      await this.audit.record({ event: 'mfa.challenge', userId, client }, tx);
    });
    return token;
  }

  /**
   * The login's second step: the mfa_token and a code. Returns the user and the scopes the
   * password grant asked for. Each wrong code spends one of the token's attempts and counts
   * against the user (every token of theirs); a code is accepted once.
   */
  async complete(
    mfaToken: string,
    factor: SecondFactor,
    client: ClientInfo,
  ): Promise<{ userId: number; scope: string; method: string }> {
    const hash = sha256(mfaToken);
    const method = 'otp' in factor ? 'totp' : 'recovery_code';
    const invalid = (why: string) => new OAuthError(400, 'invalid_grant', why);
    const outcome = await this.transaction(async (tx) => {
      const challenge = await this.crud.challenge(hash, tx);
      if (challenge === undefined || !challenge.live) {
        return fail(invalid('mfa_token is invalid, expired or already used'));
      }
      const { userId } = challenge;
      const stored = await this.crud.factor(userId, tx, true);
      if (stored?.confirmed !== true) return fail(invalid('Two-factor authentication is off'));
      if (stored.blockedSeconds > 0) {
        return fail(
          new OAuthError(
            429,
            'slow_down',
            `Too many wrong codes; retry in ${stored.blockedSeconds} s`,
            {
              retryAfterSeconds: stored.blockedSeconds,
            },
          ),
        );
      }
      const verdict =
        'otp' in factor
          ? this.checkTotp(stored, factor.otp)
          : await this.checkRecovery(userId, factor.recoveryCode, tx);
      const spent = verdict.ok || challenge.attempts + 1 >= MFA_TOKEN_ATTEMPTS;
      await this.crud.challengeAttempted(hash, spent, tx);
      await this.recordUse(userId, verdict, method, client, tx);
      if (!verdict.ok) return fail(invalid(`The code is wrong (${verdict.reason})`));
      return { ok: true as const, value: { userId, scope: challenge.scope, method } };
    });
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /**
   * A code check on the user's factor, locked: refused while blocked; a wrong code counts and is
   * recorded (committed although the request fails); a right one runs `then` in the same
   * transaction as its audit row.
   */
  private async settle<T>(
    userId: number,
    event: 'mfa.confirm' | 'mfa.disable',
    client: ClientInfo,
    check: (factor: Factor, tx: Executor) => Verdict | Promise<Verdict>,
    then: (tx: Executor) => Promise<T>,
  ): Promise<T> {
    const outcome = await this.transaction(async (tx): Promise<Outcome<T>> => {
      const factor = await this.crud.factor(userId, tx, true);
      if (factor === undefined) throw new NotFoundError('Two-factor authentication is not set up');
      if (factor.blockedSeconds > 0) return fail(new TooManyCodesError(factor.blockedSeconds));
      const verdict = await check(factor, tx);
      const entry = { event, userId, actorId: userId, client };
      if (!verdict.ok) {
        await this.crud.failed(userId, tx);
        await this.audit.record({ ...entry, outcome: 'failure', reason: verdict.reason }, tx);
        return fail(new ForbiddenError('The code is wrong'));
      }
      if (verdict.step !== undefined) await this.crud.accepted(userId, verdict.step, tx);
      await this.audit.record(entry, tx);
      return { ok: true, value: await then(tx) };
    });
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  private async recordUse(
    userId: number,
    verdict: Verdict,
    method: string,
    client: ClientInfo,
    tx: Executor,
  ): Promise<void> {
    if (verdict.ok) {
      if (verdict.step !== undefined) await this.crud.accepted(userId, verdict.step, tx);
    } else {
      await this.crud.failed(userId, tx);
    }
    await this.audit.record(
      verdict.ok
        ? { event: 'mfa.use', userId, client, details: { method } }
        : {
            event: 'mfa.use',
            outcome: 'failure',
            reason: verdict.reason,
            userId,
            client,
            details: { method },
          },
      tx,
    );
  }

  private totp(secret: string, label: string): OTPAuth.TOTP {
    return new OTPAuth.TOTP({
      issuer: APP_NAME,
      label,
      algorithm: 'SHA1',
      digits: 6,
      period: PERIOD_SECONDS,
      secret: OTPAuth.Secret.fromBase32(secret),
    });
  }

  /** A 6-digit code of this or a neighbouring step, newer than the last accepted one. */
  private checkTotp(factor: Factor, code: string): Verdict {
    if (!/^[0-9]{6}$/.test(code)) return { ok: false, reason: 'wrong_code' };
    let secret: string;
    try {
      secret = this.sealer().open(factor.sealed);
    } catch {
      // Sealed under another token key: no code can match until an admin resets the factor.
      return { ok: false, reason: 'unreadable_secret' };
    }
    const now = Date.now();
    const delta = this.totp(secret, '').validate({
      token: code,
      timestamp: now,
      window: WINDOW,
    });
    if (delta === null) return { ok: false, reason: 'wrong_code' };
    const step = Math.floor(now / 1000 / PERIOD_SECONDS) + delta;
    if (factor.lastStep !== null && step <= factor.lastStep) {
      return { ok: false, reason: 'replayed_code' };
    }
    return { ok: true, step };
  }

  private async checkRecovery(userId: number, code: string, tx: Executor): Promise<Verdict> {
    const used = await this.crud.useRecoveryCode(userId, sha256(normaliseRecovery(code)), tx);
    return used ? { ok: true } : { ok: false, reason: 'wrong_recovery_code' };
  }

  /** Six digits are a TOTP code; anything else is tried as a recovery code. */
  private checkEither(
    userId: number,
    factor: Factor,
    code: string,
    tx: Executor,
  ): Verdict | Promise<Verdict> {
    return /^[0-9]{6}$/.test(code.trim())
      ? this.checkTotp(factor, code.trim())
      : this.checkRecovery(userId, code, tx);
  }

  /** Unused recovery codes the user has left. */
  unusedRecoveryCodes(userId: number): Promise<number> {
    return this.crud.unusedRecoveryCodes(userId);
  }
}

function fail(error: Error): { ok: false; error: Error } {
  return { ok: false, error };
}
