#!/usr/bin/env node
/** The `myapi` command: one module per command group under cli/, put together here. */
import { Command } from 'commander';
import { registerAudit } from './cli/audit.js';
import { registerDatabase } from './cli/database.js';
import { report } from './cli/common.js';
import { registerMfa } from './cli/mfa.js';
import { registerInvite } from './cli/invite.js';
import { registerKeys } from './cli/keys.js';
import { registerMovies } from './cli/movies.js';
import { registerServe } from './cli/serve.js';
import { registerServices } from './cli/services.js';
import { registerTokens } from './cli/tokens.js';
import { registerUsers } from './cli/users.js';
import { VERSION } from './version.js';

export function buildCli(): Command {
  const program = new Command()
    .name('myapi')
    .description('myapi: a movies API with OAuth2 password login on PostgreSQL')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .configureOutput({
      outputError: (text, write) => {
        write(`myapi: ${text}`);
      },
    });
  registerServe(program);
  registerDatabase(program);
  registerMovies(program);
  registerUsers(program);
  registerTokens(program);
  registerServices(program);
  registerAudit(program);
  registerMfa(program);
  registerInvite(program);
  registerKeys(program);
  return program;
}

buildCli().parseAsync(process.argv).catch(report);
