/** `myapi create-user` and `myapi users ...`: user accounts, managed by an operator. */
import type { Command } from 'commander';
import { askHidden, readLine } from '../backend/prompt.js';
import { USERS_PAGE_MAX, type UserUpdate } from '../schemas/users.js';
import { InputError, plural, withAccounts } from './common.js';

/** The CLI is an operator's tool: a weak password is worth a warning, not a refusal. */
function warnIfWeak(problems: string[]): void {
  for (const problem of problems) {
    process.stderr.write(`myapi: warning: ${problem} (the HTTP API would refuse it)\n`);
  }
}

const yesNo = (value: boolean) => (value ? 'yes' : 'no');

/** Asked twice on a terminal, without echo; read from a pipe as its first line. */
async function passwordFromUser(): Promise<string> {
  if (!process.stdin.isTTY) return readLine(process.stdin);
  const first = await askHidden('Password: ', process.stdin, process.stderr);
  const second = await askHidden('Repeat password: ', process.stdin, process.stderr);
  if (first !== second) throw new InputError('the passwords do not match');
  return first;
}

interface CreateOptions {
  name: string;
  email: string;
  password?: string;
  admin: boolean;
}

async function createUser(options: CreateOptions): Promise<void> {
  // Asked before the database is opened: an embedded one stays free while the user types.
  const password = options.password ?? (await passwordFromUser());
  await withAccounts(async ({ users }) => {
    const weak = users.passwordProblems(password, options);
    const user = await users.createUser({
      name: options.name,
      email: options.email,
      password,
      is_superuser: options.admin,
    });
    warnIfWeak(weak);
    const role = user.is_superuser ? ' (superuser)' : '';
    process.stdout.write(`created user ${user.user_id} ${user.name} <${user.email}>${role}\n`);
  });
}

function listUsers(): Promise<void> {
  return withAccounts(async ({ users }) => {
    process.stdout.write('user_id\temail\tname\tactive\tsuperuser\n');
    let after: number | undefined;
    do {
      const page = await users.list({ limit: USERS_PAGE_MAX, after });
      for (const user of page.users) {
        process.stdout.write(
          `${user.user_id}\t${user.email}\t${user.name}\t${yesNo(user.is_active)}\t${yesNo(user.is_superuser)}\n`,
        );
      }
      after = page.next;
    } while (after !== undefined);
  });
}

async function setPassword(email: string, options: { password?: string }): Promise<void> {
  const password = options.password ?? (await passwordFromUser());
  await withAccounts(async ({ users }) => {
    const user = await users.getByEmail(email);
    const { revokedSessions } = await users.setPassword(user.user_id, password);
    warnIfWeak(users.passwordProblems(password, user));
    process.stdout.write(
      `password changed for ${user.email}; ${plural(revokedSessions, 'login')} ended\n`,
    );
  });
}

/** The one-field changes: command, description, the change, and what the output says. */
const CHANGES: [string, string, UserUpdate, string][] = [
  ['activate', 'let a disabled user log in again', { is_active: true }, 'activated'],
  [
    'deactivate',
    "disable a user: logins refused, the user's tokens stop working",
    { is_active: false },
    'deactivated',
  ],
  ['promote', 'make a user a superuser', { is_superuser: true }, 'promoted to superuser'],
  ['demote', 'make a superuser a regular user', { is_superuser: false }, 'demoted'],
];

export function registerUsers(program: Command): void {
  program
    .command('create-user')
    .description('create a user who can log in at POST /token')
    .requiredOption('--name <name>', "the user's name")
    .requiredOption('--email <email>', 'the email, which is the login name')
    .option('--password <password>', 'the password (omit it to be asked, or pipe it on stdin)')
    .option('--admin', 'make the user a superuser (movies:write and users:admin)', false)
    .action(createUser);

  const users = program.command('users').description('list and manage user accounts');

  users
    .command('list')
    .description('list every user: id, email, name, status and role')
    .action(listUsers);

  users
    .command('set-password')
    .description("set a user's password (ends all of the user's logins)")
    .argument('<email>', 'the user')
    .option('--password <password>', 'the new password (omit it to be asked, or pipe it on stdin)')
    .action(setPassword);

  for (const [name, description, change, done] of CHANGES) {
    users
      .command(name)
      .description(description)
      .argument('<email>', 'the user')
      .action((email: string) =>
        withAccounts(async ({ users: service }) => {
          const user = await service.update((await service.getByEmail(email)).user_id, change);
          process.stdout.write(`${user.email} ${done}\n`);
        }),
      );
  }

  users
    .command('delete')
    .description('delete a user and all of their logins')
    .argument('<email>', 'the user')
    .action((email: string) =>
      withAccounts(async ({ users: service }) => {
        const user = await service.getByEmail(email);
        await service.delete(user.user_id);
        process.stdout.write(`deleted user ${user.user_id} <${user.email}>\n`);
      }),
    );
}
