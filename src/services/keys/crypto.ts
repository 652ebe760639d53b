/** Key material of the signing key set: new key pairs, their public JWKs, and encryption at rest. */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
} from 'node:crypto';

export const SIGNING_ALGORITHMS = ['EdDSA', 'ES256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export function isSigningAlgorithm(value: string): value is SigningAlgorithm {
  return (SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

export interface NewKeyPair {
  kid: string;
  algorithm: SigningAlgorithm;
  publicJwk: Record<string, string>;
  privatePem: string;
}

/** The public members of a JWK: what may be published (never d). */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y'] as const;

function publicMembers(jwk: Record<string, unknown>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of PUBLIC_MEMBERS) {
    const value = jwk[name];
    if (typeof value === 'string') kept[name] = value;
  }
  return kept;
}

/**
 * A new key pair. The kid is the RFC 7638 thumbprint of the public key, so it names the key
 * itself and two installations never share one by accident.
 */
export function newKeyPair(algorithm: SigningAlgorithm): NewKeyPair {
  const { publicKey, privateKey } =
    algorithm === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicJwk = publicMembers(publicKey.export({ format: 'jwk' }));
  return {
    kid: thumbprint(publicJwk),
    algorithm,
    publicJwk,
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** RFC 7638: SHA-256 of the required members in lexicographic order, base64url. */
export function thumbprint(jwk: Record<string, string>): string {
  const members =
    jwk.kty === 'OKP' ? ['crv', 'kty', 'x'] : jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : [];
  const canonical = JSON.stringify(Object.fromEntries(members.map((name) => [name, jwk[name]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

/** The public key as PEM, for the verifier. */
export function publicPem(jwk: Record<string, string>): string {
  return createPublicKey({ key: jwk, format: 'jwk' })
    .export({ format: 'pem', type: 'spki' })
    .toString();
}

/**
 * AES-256-GCM under a key derived from the configured secret. The kid is authenticated data,
 * so an encrypted key copied onto another row does not decrypt.
 */
export class KeyEncryption {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHash('sha256').update('myapi signing keys\0').update(secret).digest();
  }

  encrypt(kid: string, plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(kid));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [iv, body, cipher.getAuthTag()].map((part) => part.toString('base64url')).join('.');
  }

  /** The plaintext; throws when the secret is not the one the key was encrypted with. */
  decrypt(kid: string, sealed: string): string {
    const [iv, body, tag] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
    if (iv === undefined || body === undefined || tag === undefined) {
      throw new Error(`signing key ${kid}: malformed encrypted private key`);
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(kid));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new Error(
        `signing key ${kid}: cannot decrypt its private key (is MYAPI_TOKEN_KEYS_SECRET the one it was made with?)`,
        { cause: error },
      );
    }
  }
}
