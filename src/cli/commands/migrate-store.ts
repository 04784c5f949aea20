/**
 * `ufdl-agent migrate-store --to postgres://user@host/db [--data DIR | --from FILE] [--password-file F]`:
 * copy a SQLite server's database (jobs, templates, users, nodes, outputs, …) into a new PostgreSQL
 * database, migrated first, in one transaction, and print each table's rows and checksum, equal on
 * both sides (`server/store/postgres/copy-from-sqlite.ts`). Stop the server first: a server still
 * writing would change the source under the copy. The password comes from --password-file or
 * UFDL_DATABASE_PASSWORD, never from the command line, and is never printed.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { CliError, oneLineUsageErrors, usageError } from '../cli-error.js';
import { loadConfig } from '../config/load.js';
import { EXIT } from '../exit-codes.js';
import { commonFlags, type CommonFlags } from '../flags.js';
import { printJson } from '../output.js';

interface MigrateStoreFlags extends CommonFlags {
  to?: string;
  from?: string;
  data?: string;
  passwordFile?: string;
  json?: boolean;
}

export function registerMigrateStore(program: Command): void {
  commonFlags(
    oneLineUsageErrors(program.command('migrate-store'))
      .description("Copy a stopped SQLite server's data into a new PostgreSQL database, checked by counts and checksums")
      .requiredOption('--to <url>', 'the PostgreSQL database: postgres://user@host:port/database')
      .option('--data <dir>', "the SQLite server's data directory (serve.data_dir)")
      .option('--from <file>', 'the SQLite database file itself (default: ufdl.sqlite3 in the data directory)')
      .option('--password-file <file>', 'file holding the PostgreSQL password (else UFDL_DATABASE_PASSWORD)')
      .option('--json', 'print the report as JSON'),
  ).action(async (flags: MigrateStoreFlags) => {
    const config = loadConfig({ file: flags.config, flags: { 'serve.data_dir': flags.data } });
    const dataDir = config.values['serve.data_dir'];
    const from = flags.from ?? join(String(dataDir), 'ufdl.sqlite3');
    const { isPostgresUrl, openPool, redactDatabaseUrl, DatabaseSettingsError } = await import('../../server/store/postgres/connection.js');
    if (!isPostgresUrl(flags.to!)) throw usageError(`--to must be a postgres:// URL, not ${redactDatabaseUrl(flags.to!)}`);
    const { copySqliteToPostgres, openSqliteSource, StoreCopyError } = await import('../../server/store/postgres/copy-from-sqlite.js');
    const { migratePostgres } = await import('../../server/store/postgres/schema.js');
    const target = redactDatabaseUrl(flags.to!);
    let source;
    try {
      source = openSqliteSource(from);
    } catch (err) {
      throw new CliError(EXIT.FAILURE, (err as Error).message);
    }
    let pool;
    try {
      pool = await openPool({ url: flags.to!, passwordFile: flags.passwordFile }, () => {});
      await migratePostgres(pool);
      const report = await copySqliteToPostgres(source, pool);
      if (flags.json) printJson({ from, to: target, tables: report });
      else {
        process.stdout.write(`copied ${from} into ${target}; counts and checksums match:\n`);
        for (const { table, rows, checksum } of report) process.stdout.write(`  ${table.padEnd(10)} ${String(rows).padStart(8)} rows  sha256 ${checksum}\n`);
      }
    } catch (err) {
      if (err instanceof DatabaseSettingsError) throw new CliError(EXIT.CONFIG, err.message);
      if (err instanceof StoreCopyError) throw new CliError(EXIT.FAILURE, err.message);
      // Connection and SQL errors: pg's messages name the server's complaint, never the password.
      throw new CliError(EXIT.UNAVAILABLE, `PostgreSQL at ${target}: ${(err as Error).message}`);
    } finally {
      source.close();
      await pool?.end();
    }
  });
}
