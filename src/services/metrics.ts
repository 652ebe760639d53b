/**
 * What the services count for the operators (logins, throttle refusals, refresh-token reuse,
 * revocations, the hashing queue). The server injects a Prometheus implementation
 * (backend/metrics/); everything else gets `noMetrics`, so services never load prom-client.
 */

/** How a password grant ended. */
export type LoginOutcome =
  /** Tokens issued. */
  | 'success'
  /** Unknown user or wrong password (the client cannot tell which, nor can this label). */
  | 'invalid_credentials'
  /** Right password, disabled account. */
  | 'disabled'
  /** Refused by the brute-force throttle before any check (429). */
  | 'throttled'
  /** Not checked (503): the hashing queue was full, hashing restarting, or the database down. */
  | 'unavailable';

/** What the hashing queue looks like now: read at each scrape. */
export interface HashQueueState {
  /** Hashes waiting for a slot. */
  queued: number;
  /** Slots computing (or resting after a hash, see backend/limiter.ts). */
  running: number;
}

export interface ServiceMetrics {
  login(outcome: LoginOutcome): void;
  /** The throttle refused a password check (a login or a password change). */
  throttleRefused(): void;
  /** A used refresh token came back: its login was revoked. */
  refreshTokenReused(): void;
  /** `count` sessions ended, for `reason` (a fixed phrase of the services). */
  sessionsRevoked(reason: string, count: number): void;
  /** Where the hashing queue can be read at scrape time. */
  watchHashQueue(read: () => HashQueueState): void;
  /** A hash waited this long for a slot. */
  hashWaited(seconds: number): void;
}

const nothing = (): void => undefined;

/** The CLI's and the tests' metrics: nothing counted, nothing loaded. */
export const noMetrics: ServiceMetrics = {
  login: nothing,
  throttleRefused: nothing,
  refreshTokenReused: nothing,
  sessionsRevoked: nothing,
  watchHashQueue: nothing,
  hashWaited: nothing,
};
