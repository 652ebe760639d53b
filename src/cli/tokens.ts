/** `myapi tokens ...`: personal access tokens, created, listed and revoked by an operator. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { allowedScopes } from '../services/scopes.js';
import { withAccounts } from './common.js';

interface CreateOptions {
  name: string;
  scope?: string;
  expiresDays?: number;
  expiry: boolean;
}

function days(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > 3650) {
    throw new InvalidArgumentError('must be a whole number of days from 1 to 3650');
  }
  return Number(value);
}

const orDash = (value: string | null) => value ?? '-';

/** The secret alone on stdout, so `TOKEN=$(myapi tokens create ...)` keeps just it. */
function createToken(email: string, options: CreateOptions): Promise<void> {
  return withAccounts(async ({ users, accessTokens }) => {
    const user = await users.getByEmail(email);
    const created = await accessTokens.create(user.user_id, allowedScopes(user.is_superuser), {
      name: options.name,
      ...(options.scope === undefined ? {} : { scope: options.scope }),
      ...(options.expiry ? {} : { expires_in_days: null }),
      ...(options.expiresDays === undefined ? {} : { expires_in_days: options.expiresDays }),
    });
    process.stderr.write(
      `created token ${created.token_id} '${created.name}' for ${user.email} ` +
        `(${created.scope}), expires ${created.expires_at ?? 'never'}; ` +
        'the secret below is shown only now\n',
    );
    process.stdout.write(`${created.token}\n`);
  });
}

function listTokens(email: string): Promise<void> {
  return withAccounts(async ({ users, accessTokens }) => {
    const user = await users.getByEmail(email);
    process.stdout.write('token_id\tname\tprefix\tscope\tcreated\tlast_used\texpires\n');
    for (const token of await accessTokens.list(user.user_id)) {
      process.stdout.write(
        `${token.token_id}\t${token.name}\t${token.prefix}\t${token.scope}\t${token.created_at}\t` +
          `${orDash(token.last_used_at)}\t${orDash(token.expires_at)}\n`,
      );
    }
  });
}

function revokeToken(email: string, tokenId: string): Promise<void> {
  return withAccounts(async ({ users, accessTokens }) => {
    const user = await users.getByEmail(email);
    await accessTokens.revoke(user.user_id, tokenId);
    process.stdout.write(`revoked token ${tokenId} of ${user.email}\n`);
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function tokenId(value: string): string {
  if (!UUID.test(value)) throw new InvalidArgumentError('must be a token_id from `tokens list`');
  return value.toLowerCase();
}

export function registerTokens(program: Command): void {
  const tokens = program
    .command('tokens')
    .description("create, list and revoke users' personal access tokens");

  tokens
    .command('create')
    .description('create a personal access token; prints its secret, shown only this once')
    .argument('<email>', 'the user the token acts for')
    .requiredOption('--name <name>', 'what the token is for')
    .option('--scope <scopes>', "space-separated scopes (default: all the user's role allows)")
    .addOption(
      new Option('--expires-days <days>', 'days until it expires (default 30)')
        .argParser(days)
        .conflicts('expiry'),
    )
    .option('--no-expiry', 'never expires (needs MYAPI_ACCESS_TOKENS__ALLOW_NO_EXPIRY=true)')
    .action(createToken);

  tokens
    .command('list')
    .description("list a user's tokens that were not revoked, newest first")
    .argument('<email>', 'the user')
    .action(listTokens);

  tokens
    .command('revoke')
    .description("revoke one of a user's tokens: it stops working at once")
    .argument('<email>', 'the user')
    .argument('<token_id>', 'the token, as `tokens list` shows it', tokenId)
    .action(revokeToken);
}
