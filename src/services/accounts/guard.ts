/** Rate limits of the mail-sending endpoints, on the login throttle's counters. */
import { AppError } from '../../exc.js';
import type { LoginThrottle } from '../throttle.js';

export class TooManyRequestsError extends AppError {
  constructor(retryAfterSeconds: number) {
    super(429, `Too many requests; retry in ${retryAfterSeconds} s`, {
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
  }
}

/**
 * Each request that sends a mail counts as a failure on the throttle's three counters (this
 * address and email, the email from anywhere, this client address), in a namespace of its
 * own so it never slows a login: a few go through, then each waits longer. The count depends
 * only on what the client sent, never on whether an account exists.
 */
export class MailRequestGuard {
  constructor(private readonly throttle: LoginThrottle) {}

  async count(kind: string, email: string, address: string): Promise<void> {
    const decision = await this.throttle.begin(`${kind}:${email}`, `${kind}:${address}`);
    if (!decision.allowed) throw new TooManyRequestsError(decision.retryAfterSeconds);
    await this.throttle.failed(decision.attempt);
  }
}
