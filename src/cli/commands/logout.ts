/**
 * `ufdl-agent logout [--all]`: forget the tokens the CLI keeps for the configured server and user
 * (`token-cache.ts`), or with `--all` every server's and user's. The next command logs in with the
 * password again. Nothing is sent: the UFDL API has no way to revoke a token, so a copy of the file
 * made before stays good until its refresh token expires (docs/OPERATIONS.md, "The CLI's token cache").
 */
import type { Command } from 'commander';
import { oneLineUsageErrors } from '../cli-error.js';
import { resolveTarget, tokenCacheOf, type ConnectFlags } from '../connect.js';
import { commonFlags } from '../flags.js';
import { dropAllTokens, tokenCacheDir } from '../token-cache.js';

interface LogoutFlags extends ConnectFlags {
  all?: boolean;
}

export function registerLogout(program: Command): void {
  commonFlags(
    oneLineUsageErrors(program.command('logout'))
      .description("Forget the CLI's cached tokens for the server and user (or, with --all, every one); the next command logs in again")
      .option('--server <url>', 'UFDL server URL, or several comma-separated (server.url; also UFDL_AGENT_SERVER_URL)')
      .option('--user <name>', 'user (server.username; also UFDL_AGENT_SERVER_USERNAME)')
      .option('--all', "every server's and user's cached tokens"),
  ).action((flags: LogoutFlags) => {
    if (flags.all) {
      const count = dropAllTokens();
      process.stdout.write(count === 0 ? `no cached tokens (${tokenCacheDir()})\n` : `removed ${count} cached token file${count === 1 ? '' : 's'} (${tokenCacheDir()})\n`);
      return;
    }
    const target = resolveTarget(flags);
    const cache = tokenCacheOf(target);
    const had = cache.load() !== undefined;
    cache.drop();
    const who = `user '${target.username}' at ${target.urls.join(', ')}`;
    process.stdout.write(had ? `removed the cached tokens of ${who}\n` : `no cached tokens for ${who}\n`);
  });
}
