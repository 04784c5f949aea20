/**
 * First-start state: the JWT signing secret, the reference's hardware generations (and newer ones as
 * an extension), the licences of templates imported before licences had pks, and the admin
 * user (password from the options or generated and written once to a 0600 file under the data dir).
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TokenService, hashPassword } from '../auth.js';
import type { ResolvedServerOptions } from '../options.js';
import { nowIso, type Db } from './db.js';
import { matchTemplateLicences } from './licences.js';

/**
 * The reference's hardware generations (its `migrations/hardware/hardware.csv`), pks 1–8 in this
 * order: min compute capability inclusive, max exclusive. Ada Lovelace (8.9) is Ampere there.
 */
export const REFERENCE_HARDWARE_GENERATIONS: ReadonlyArray<readonly [string, number, number]> = [
  ['Fermi', 2.0, 3.0],
  ['Kepler', 3.0, 5.0],
  ['Maxwell', 5.0, 6.0],
  ['Pascal', 6.0, 7.0],
  ['Volta', 7.0, 7.5],
  ['Turing', 7.5, 8.0],
  ['Ampere', 8.0, 9.0],
  ['Hopper', 9.0, 10.0],
];

/** Newer generations, an extension: after the reference's rows (pks 9…), served only with extensions on. */
export const EXTENSION_HARDWARE_GENERATIONS: ReadonlyArray<readonly [string, number, number]> = [['Blackwell and newer', 10.0, 100.0]];

/**
 * The token signing secret, made on first start. Replicas starting together on one database each
 * offer one; the first to commit wins and all of them read back that one, so a token from any
 * replica is good on every other.
 */
export function ensureSecret(db: Db): string {
  db.prepare("INSERT OR IGNORE INTO settings (key, value) VALUES ('jwt_secret', ?)").run(TokenService.generateSecret());
  return (db.prepare("SELECT value FROM settings WHERE key = 'jwt_secret'").get() as { value: string }).value;
}

/**
 * A new admin password, written to `file` before it is used, so that it is never lost. The file is
 * created exclusively: a replica starting beside another on the same data directory reads the
 * password the other wrote rather than writing its own, so both offer the same.
 */
async function generatedAdminPassword(file: string): Promise<string> {
  const password = randomBytes(18).toString('base64url');
  try {
    await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
    return password;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const written = (await readFile(file, 'utf8')).trim();
    if (written !== '') return written;
    await writeFile(file, `${password}\n`, { mode: 0o600 });
    return password;
  }
}

export async function seedDatabase(
  db: Db,
  options: ResolvedServerOptions,
  log: Logger,
): Promise<{ adminPasswordFile: string | undefined }> {
  const insertHardware = db.prepare(
    'INSERT OR IGNORE INTO hardware (generation, min_compute_capability, max_compute_capability, extension) VALUES (?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (const [generation, min, max] of REFERENCE_HARDWARE_GENERATIONS) insertHardware.run(generation, min, max, 0);
    for (const [generation, min, max] of EXTENSION_HARDWARE_GENERATIONS) insertHardware.run(generation, min, max, 1);
  })();
  matchTemplateLicences(db, log);

  const users = (db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  if (users > 0) return { adminPasswordFile: undefined };

  let password = options.adminPassword;
  let adminPasswordFile: string | undefined;
  if (!password) {
    adminPasswordFile = join(options.dataDir, 'admin-password');
    password = await generatedAdminPassword(adminPasswordFile);
  }
  // Replicas starting together on one database (and one data directory) race to here with the same
  // password: the first insert makes the admin, the others find it made.
  const { changes } = db
    .prepare(
      `INSERT OR IGNORE INTO users (username, password_hash, is_staff, is_superuser, is_active, date_joined)
       VALUES (?, ?, 1, 1, 1, ?)`,
    )
    .run(options.adminUser, await hashPassword(password), nowIso());
  if (changes === 0) return { adminPasswordFile: undefined };
  log.info(
    { user: options.adminUser, passwordFile: adminPasswordFile },
    adminPasswordFile
      ? `created admin user '${options.adminUser}'; its generated password is in ${adminPasswordFile}`
      : `created admin user '${options.adminUser}' with the configured password`,
  );
  return { adminPasswordFile };
}
