/** `myapi mfa reset EMAIL`: an operator turns off a user's two-factor authentication. */
import type { Command } from 'commander';
import { withAccounts } from './common.js';

export function registerMfa(program: Command): void {
  const mfa = program.command('mfa').description("manage users' two-factor authentication");
  mfa
    .command('reset')
    .description(
      "turn off a user's two-factor authentication (lost phone and recovery codes): the next " +
        'login needs only the password, and the user may enrol again',
    )
    .argument('<email>', 'the user')
    .action((email: string) =>
      withAccounts(async ({ users, mfa: service }) => {
        const user = await users.getByEmail(email);
        const removed = await service.reset(user.user_id);
        process.stdout.write(
          removed
            ? `two-factor authentication reset for ${user.email}\n`
            : `${user.email} has no two-factor authentication; nothing to reset\n`,
        );
      }),
    );
}
