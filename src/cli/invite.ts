/** `myapi invite EMAIL`: a single-use sign-up invitation, mailed by the server's sender. */
import type { Command } from 'commander';
import { withAccounts } from './common.js';

export function registerInvite(program: Command): void {
  program
    .command('invite')
    .description(
      'invite EMAIL to sign up (MYAPI_SIGNUP=invite or open): the invitation goes to the mail ' +
        'outbox, which a running server sends',
    )
    .argument('<email>', 'the address to invite')
    .action((email: string) =>
      withAccounts(async ({ selfService }) => {
        const invitation = await selfService.signup.invite(email);
        process.stdout.write(
          `invited ${invitation.email} (valid until ${invitation.expires_at}); the mail is queued\n`,
        );
      }),
    );
}
