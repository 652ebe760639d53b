/** `myapi keys ...`: the key set that signs access tokens (docs/cli.md, docs/authentication.md). */
import { Option, type Command } from 'commander';
import { resolveKeysSecret } from '../backend/keys_secret.js';
import {
  KeyEncryption,
  SIGNING_ALGORITHMS,
  type SigningAlgorithm,
} from '../services/keys/crypto.js';
import { signingAlgorithm } from '../services/keys/setup.js';
import { SigningKeyService, verifySeconds, type KeyInfo } from '../services/signing_keys.js';
import { InputError, withReadyDatabase } from './common.js';

const when = (date: Date | null) => (date === null ? '-' : date.toISOString());

function printKeys(keys: KeyInfo[]): void {
  process.stdout.write('kid\talgorithm\tstatus\tcreated\tverify_until\tretired\n');
  for (const key of keys) {
    process.stdout.write(
      `${key.kid}\t${key.algorithm}\t${key.status}\t${when(key.createdAt)}\t${when(key.verifyUntil)}\t${when(key.retiredAt)}\n`,
    );
  }
}

function listKeys(): Promise<void> {
  return withReadyDatabase(async (database) => {
    printKeys(await new SigningKeyService(database).list());
  });
}

function rotateKeys(options: { algorithm?: SigningAlgorithm }): Promise<void> {
  return withReadyDatabase(async (database, settings) => {
    const configured = signingAlgorithm(settings);
    const algorithm = options.algorithm ?? (configured === 'HS256' ? 'EdDSA' : configured);
    const secret = resolveKeysSecret(settings, database.dsn, {
      info: (message) => process.stderr.write(`myapi: ${message}\n`),
      warn: (message) => process.stderr.write(`myapi: warning: ${message}\n`),
    });
    if (secret === undefined) {
      throw new InputError('MYAPI_TOKEN_KEYS_SECRET is required to add a signing key');
    }
    const seconds = verifySeconds({
      lifetimeSeconds: settings.token_expire_minutes * 60,
      reloadSeconds: settings.token_keys_reload_seconds,
    });
    const kid = await new SigningKeyService(database).rotate(
      algorithm,
      new KeyEncryption(secret),
      seconds,
    );
    process.stdout.write(
      `added signing key ${kid} (${algorithm}); the previous keys verify for ${seconds} s more\n`,
    );
    if (configured === 'HS256') {
      process.stderr.write(
        'myapi: warning: MYAPI_TOKEN_KEY is set, so tokens stay HS256 until MYAPI_TOKEN_ALGORITHM names EdDSA or ES256\n',
      );
    }
  });
}

function retireKey(kid: string): Promise<void> {
  return withReadyDatabase(async (database) => {
    const outcome = await new SigningKeyService(database).retire(kid);
    if (outcome === 'unknown') throw new InputError(`no signing key ${kid} still in use`);
    if (outcome === 'signing') {
      throw new InputError(`${kid} is the key that signs: run "myapi keys rotate" first`);
    }
    process.stdout.write(`retired signing key ${kid}: tokens it signed are refused from now on\n`);
  });
}

export function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description('the keys that sign access tokens (EdDSA or ES256), published as a JWK set');
  keys.command('list').description('list the signing keys and their state').action(listKeys);
  keys
    .command('rotate')
    .description(
      'add a new signing key; the previous ones keep verifying until their tokens expire',
    )
    .addOption(
      new Option(
        '--algorithm <algorithm>',
        'algorithm of the new key (default: MYAPI_TOKEN_ALGORITHM, or EdDSA)',
      ).choices(SIGNING_ALGORITHMS),
    )
    .action(rotateKeys);
  keys
    .command('retire')
    .description('stop a key verifying at once (a leaked key); tokens it signed are refused')
    .argument('<kid>', 'the key id, as `myapi keys list` shows it')
    // A kid is a base64url thumbprint, so one in 64 starts with "-": it is the kid, not an option.
    .allowUnknownOption()
    .action(retireKey);
}
