/**
 * `ufdl-agent users add NAME [--admin] [--worker] [--password-file F]`, `users passwd NAME
 * [--password-file F]` (admin, or yourself for passwd) and `users worker NAME [--off]` (admin). Prompt-free: the new password is the first line of the file, or
 * `UFDL_AGENT_NEW_PASSWORD`. The login itself uses the configured credentials (`server.*`).
 */
import type { Command } from 'commander';
import { oneLineUsageErrors, usageError } from '../cli-error.js';
import { about, connectFlags, withSession, type ConnectFlags, type Session } from '../connect.js';
import { secretFromFile } from '../config/load.js';
import { printJson } from '../output.js';

interface UserFlags extends ConnectFlags {
  admin?: boolean;
  worker?: boolean;
  json?: boolean;
  /** Here: the NEW user's password, not the login one. */
  newPasswordFile?: string;
}

export const NEW_PASSWORD_ENV = 'UFDL_AGENT_NEW_PASSWORD';

export function registerUsers(program: Command): void {
  const users = oneLineUsageErrors(program.command('users')).description('Create users and change passwords (admin)');

  connectFlags(
    users
      .command('add')
      .description(`Create a user; the password comes from --password-file or ${NEW_PASSWORD_ENV}`)
      .argument('<name>', 'user name')
      .option('--admin', 'make the user an administrator')
      .option('--worker', 'make the user a worker account (may act as a node where serve.node_actions = "workers")')
      .option('--password-file <file>', "file whose first line is the new user's password", undefined)
      .option('--json', 'print the user as JSON'),
    { passwordFile: false },
  ).action(async (name: string, flags: UserFlags & { passwordFile?: string }) => {
    await withNewPassword(flags, async (password, { client }) => {
      const body = { username: name, password, is_staff: flags.admin === true, ...(flags.worker ? { is_worker: true } : {}) };
      const user = await about(`user '${name}'`, client.createUser(body));
      if (flags.json) printJson(user);
      else process.stdout.write(`created user '${user.username}' (pk ${user.pk}${user.is_staff ? ', admin' : ''}${flags.worker ? ', worker' : ''})\n`);
    });
  });

  connectFlags(
    users
      .command('worker')
      .description('Make a user a worker account, or not with --off (admin); see serve.node_actions')
      .argument('<name>', 'user name')
      .option('--off', 'no longer a worker account')
      .option('--json', 'print the user as JSON'),
  ).action(async (name: string, flags: UserFlags & { off?: boolean }) => {
    await withSession(flags, async ({ client }) => {
      const user = await about(`user '${name}'`, client.setWorker(name, flags.off !== true));
      if (flags.json) printJson(user);
      else process.stdout.write(`'${user.username}' is ${user.is_worker ? 'now' : 'no longer'} a worker account\n`);
    });
  });

  connectFlags(
    users
      .command('passwd')
      .description(`Set a user's password (admin, or your own); from --password-file or ${NEW_PASSWORD_ENV}`)
      .argument('<name>', 'user name')
      .option('--password-file <file>', 'file whose first line is the new password', undefined)
      .option('--json', 'print the user as JSON'),
    { passwordFile: false },
  ).action(async (name: string, flags: UserFlags & { passwordFile?: string }) => {
    await withNewPassword(flags, async (password, { client }) => {
      const user = await about(`user '${name}'`, client.setPassword(name, password));
      if (flags.json) printJson(user);
      else process.stdout.write(`password of '${user.username}' changed\n`);
    });
  });
}

/**
 * Run `action` with the new password, in a session logged in with the configured credentials: this
 * command's --password-file holds the new password, so it must not be taken for the login one.
 */
function withNewPassword(
  flags: UserFlags & { passwordFile?: string },
  action: (password: string, session: Session) => Promise<void>,
): Promise<void> {
  const password = newPassword(flags.passwordFile);
  return withSession({ ...flags, passwordFile: undefined }, (session) => action(password, session));
}

function newPassword(file: string | undefined): string {
  let password: string | undefined;
  if (file !== undefined) {
    try {
      password = secretFromFile(file);
    } catch (err) {
      throw usageError(`--password-file: cannot read ${file}: ${(err as Error).message}`);
    }
    if (password === '') throw usageError(`--password-file: the first line of ${file} is empty`);
    return password;
  }
  password = process.env[NEW_PASSWORD_ENV];
  if (password === undefined || password === '') throw usageError(`no new password: give --password-file FILE or set ${NEW_PASSWORD_ENV}`);
  return password;
}
