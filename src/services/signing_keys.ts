/**
 * The signing key set (EdDSA or ES256) in the database: SigningKeyService manages it (the
 * `myapi keys` commands), KeyRing signs and verifies with it in the server and follows changes
 * made by any process (LISTEN/NOTIFY, and a bounded reload interval where no notice arrives).
 */
import { createSigner, createVerifier } from 'fast-jwt';
import { TOKEN_AUDIENCE } from '../const.js';
import { AppService, type ServiceContext } from './base.js';
import { KEYS_CHANNEL, SigningKeyCRUD, type SigningKeyRow } from './keys/crud.js';
import {
  isSigningAlgorithm,
  KeyEncryption,
  newKeyPair,
  publicPem,
  type SigningAlgorithm,
} from './keys/crypto.js';
import { signingKeys } from '../models/signing_keys.js';
import type { TokenKeys, TokenVerifier } from './tokens.js';

export interface KeyInfo {
  kid: string;
  algorithm: string;
  createdAt: Date;
  /** 'signing' (the newest usable key), 'verifying' (until verifyUntil), 'expired' or 'retired'. */
  status: 'signing' | 'verifying' | 'expired' | 'retired';
  verifyUntil: Date | null;
  retiredAt: Date | null;
}

export type RetireOutcome = 'retired' | 'unknown' | 'signing';

/** The published form of a key (RFC 7517). */
export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  y?: string;
  kid: string;
  alg: string;
  use: 'sig';
}

/** Adding, listing and retiring keys. */
export class SigningKeyService extends AppService {
  protected readonly keys: SigningKeyCRUD;

  constructor(context: ServiceContext) {
    super(context);
    this.keys = new SigningKeyCRUD(context, signingKeys);
  }

  async list(): Promise<KeyInfo[]> {
    const rows = await this.keys.all();
    const now = Date.now();
    let signerSeen = false;
    return rows.map((row) => {
      let status: KeyInfo['status'];
      if (row.retired_at !== null) status = 'retired';
      else if (row.verify_until !== null) {
        status = row.verify_until.getTime() > now ? 'verifying' : 'expired';
      } else {
        status = signerSeen ? 'verifying' : 'signing';
        signerSeen = true;
      }
      return {
        kid: row.kid,
        algorithm: row.algorithm,
        createdAt: row.created_at,
        status,
        verifyUntil: row.verify_until,
        retiredAt: row.retired_at,
      };
    });
  }

  /**
   * Adds a signing key. The keys that signed until now keep verifying for `verifySeconds`: the
   * lifetime of the last token they signed, plus the time every process takes to hear.
   */
  rotate(
    algorithm: SigningAlgorithm,
    encryption: KeyEncryption,
    verifySeconds: number,
  ): Promise<string> {
    return this.transaction(async (tx) => {
      await this.keys.lock(tx);
      await this.keys.supersede(verifySeconds, tx);
      const pair = newKeyPair(algorithm);
      await this.keys.addOne(
        {
          kid: pair.kid,
          algorithm: pair.algorithm,
          public_jwk: pair.publicJwk,
          private_key_encrypted: encryption.encrypt(pair.kid, pair.privatePem),
        },
        tx,
      );
      await this.keys.announce(tx);
      return pair.kid;
    });
  }

  /**
   * A signing key of `algorithm`, made when there is none (a new installation) or when the
   * configured algorithm changed; several processes starting at once make one.
   */
  async ensureSigner(
    algorithm: SigningAlgorithm,
    encryption: KeyEncryption,
    verifySeconds: number,
  ): Promise<void> {
    const current = (await this.keys.usable()).find((row) => row.verify_until === null);
    if (current?.algorithm === algorithm) return;
    await this.transaction(async (tx) => {
      await this.keys.lock(tx);
      const locked = (await this.keys.usable(tx)).find((row) => row.verify_until === null);
      if (locked?.algorithm === algorithm) return;
      await this.keys.supersede(verifySeconds, tx);
      const pair = newKeyPair(algorithm);
      await this.keys.addOne(
        {
          kid: pair.kid,
          algorithm,
          public_jwk: pair.publicJwk,
          private_key_encrypted: encryption.encrypt(pair.kid, pair.privatePem),
        },
        tx,
      );
      await this.keys.announce(tx);
    });
  }

  /** Stops a key verifying at once (a leaked key). The key that signs is retired by a rotation. */
  retire(kid: string): Promise<RetireOutcome> {
    return this.transaction(async (tx) => {
      await this.keys.lock(tx);
      const usable = await this.keys.usable(tx);
      const row = usable.find((candidate) => candidate.kid === kid);
      if (row === undefined) return 'unknown';
      if (row.verify_until === null) return 'signing';
      await this.keys.retire(kid, tx);
      await this.keys.announce(tx);
      return 'retired';
    });
  }

  usable(): Promise<SigningKeyRow[]> {
    return this.keys.usable();
  }
}

export interface KeyRingOptions {
  algorithm: SigningAlgorithm;
  encryption: KeyEncryption;
  lifetimeSeconds: number;
  /** How often the key set is read again where no notice of a change can arrive. */
  reloadSeconds: number;
  /** The `iss` this server signs and accepts. */
  issuer: string;
  /** Tokens without a kid: HS256 under this key (MYAPI_TOKEN_KEY, or an older embedded key). */
  legacy: { key: string; issuer: string } | undefined;
  log: { warn(object: object, message: string): void };
}

interface LoadedKey {
  row: SigningKeyRow;
  verifier: TokenVerifier;
}

/** An unknown kid asks for a reload at most this often, so garbage cannot hammer the database. */
const UNKNOWN_KID_RELOAD_MS = 1000;
/** A token header is a short JSON object; anything longer is refused before parsing. */
const MAX_HEADER_CHARS = 512;

/** Signs with the newest key, verifies with any usable one, chosen by the token's kid. */
export class KeyRing implements TokenKeys {
  private loaded = new Map<string, LoadedKey>();
  private signer: { kid: string; sign: (payload: Record<string, unknown>) => string } | undefined;
  private readonly legacyVerifier: TokenVerifier | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private again = false;
  private lastUnknownReload = 0;
  private readonly dropListeners: (() => void)[] = [];

  private constructor(
    private readonly service: SigningKeyService,
    private readonly options: KeyRingOptions,
  ) {
    this.legacyVerifier =
      options.legacy === undefined
        ? undefined
        : createVerifier({
            key: options.legacy.key,
            algorithms: ['HS256'],
            allowedIss: options.legacy.issuer,
            allowedAud: TOKEN_AUDIENCE,
            requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub'],
          });
  }

  static async open(context: ServiceContext, options: KeyRingOptions): Promise<KeyRing> {
    const service = new SigningKeyService(context);
    await service.ensureSigner(options.algorithm, options.encryption, verifySeconds(options));
    const ring = new KeyRing(service, options);
    await ring.reload();
    context.listen?.(KEYS_CHANNEL, () => {
      ring.reloadSoon();
    });
    ring.timer = setInterval(() => {
      ring.reloadSoon();
    }, options.reloadSeconds * 1000);
    ring.timer.unref();
    return ring;
  }

  close(): void {
    clearInterval(this.timer);
  }

  get issuer(): string {
    return this.options.issuer;
  }

  sign(payload: Record<string, unknown>): string {
    if (this.signer === undefined) throw new Error('no signing key loaded');
    return this.signer.sign(payload);
  }

  /** The verifier of the key the token's header names; undefined for an unknown kid. */
  verifierFor(token: string): TokenVerifier | undefined {
    const end = token.indexOf('.');
    if (end <= 0 || end > MAX_HEADER_CHARS) return undefined;
    let kid: unknown;
    try {
      kid = (
        JSON.parse(Buffer.from(token.slice(0, end), 'base64url').toString('utf8')) as {
          kid?: unknown;
        } | null
      )?.kid;
    } catch {
      return undefined;
    }
    if (kid === undefined) return this.legacyVerifier;
    if (typeof kid !== 'string') return undefined;
    const known = this.loaded.get(kid)?.verifier;
    if (known === undefined && Date.now() - this.lastUnknownReload > UNKNOWN_KID_RELOAD_MS) {
      // Perhaps another process has just rotated and its notice is on the way.
      this.lastUnknownReload = Date.now();
      this.reloadSoon();
    }
    return known;
  }

  onKeysDropped(listener: () => void): void {
    this.dropListeners.push(listener);
  }

  /** The public keys that verify, for /.well-known/jwks.json. */
  jwks(): { keys: PublicJwk[] } {
    return {
      keys: [...this.loaded.values()].map(({ row }) => {
        const { kty = '', crv = '', x = '', y } = row.public_jwk;
        return {
          kty,
          crv,
          x,
          ...(y === undefined ? {} : { y }),
          kid: row.kid,
          alg: row.algorithm,
          use: 'sig' as const,
        };
      }),
    };
  }

  /** Reads the key set again; one read at a time, and one more if asked meanwhile. */
  reloadSoon(): void {
    if (this.reloading !== undefined) {
      this.again = true;
      return;
    }
    this.reloading = this.reload()
      .catch((error: unknown) => {
        this.options.log.warn({ err: error }, 'could not reload the signing keys');
      })
      .finally(() => {
        this.reloading = undefined;
        if (this.again) {
          this.again = false;
          this.reloadSoon();
        }
      });
  }

  private async reload(): Promise<void> {
    const rows = await this.service.usable();
    const next = new Map<string, LoadedKey>();
    for (const row of rows) {
      if (!isSigningAlgorithm(row.algorithm)) continue;
      const kept = this.loaded.get(row.kid);
      next.set(row.kid, {
        row,
        verifier: kept?.verifier ?? this.verifierOf(row.algorithm, row.public_jwk),
      });
    }
    const newest = rows.find(
      (row) => row.verify_until === null && isSigningAlgorithm(row.algorithm),
    );
    if (newest !== undefined && newest.kid !== this.signer?.kid) {
      const key = this.options.encryption.decrypt(newest.kid, newest.private_key_encrypted);
      this.signer = {
        kid: newest.kid,
        sign: createSigner({
          key,
          algorithm: newest.algorithm as SigningAlgorithm,
          kid: newest.kid,
          expiresIn: this.options.lifetimeSeconds * 1000,
          iss: this.options.issuer,
          aud: TOKEN_AUDIENCE,
        }),
      };
    }
    const dropped = [...this.loaded.keys()].some((kid) => !next.has(kid));
    this.loaded = next;
    if (dropped) for (const listener of this.dropListeners) listener();
  }

  private verifierOf(algorithm: SigningAlgorithm, jwk: Record<string, string>): TokenVerifier {
    return createVerifier({
      key: publicPem(jwk),
      algorithms: [algorithm],
      allowedIss: this.options.issuer,
      allowedAud: TOKEN_AUDIENCE,
      requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub'],
    });
  }
}

/** How long a superseded key keeps verifying: a token's lifetime and two reload intervals. */
export function verifySeconds(options: { lifetimeSeconds: number; reloadSeconds: number }): number {
  return options.lifetimeSeconds + 2 * options.reloadSeconds;
}
