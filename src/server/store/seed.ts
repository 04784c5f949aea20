/**
 * First-start state: the JWT signing secret, the reference's hardware generations (and newer ones as
 * an extension), the licences of templates imported before licences had pks, and the admin
 * user (password from the options or generated and written once to a 0600 file under the data dir).
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
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

export function ensureSecret(db: Db): string {
  const row = db.prepare("SELECT value FROM settings WHERE key = 'jwt_secret'").get() as { value: string } | undefined;
  if (row) return row.value;
  const secret = TokenService.generateSecret();
  db.prepare("INSERT INTO settings (key, value) VALUES ('jwt_secret', ?)").run(secret);
  return secret;
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
    password = randomBytes(18).toString('base64url');
    adminPasswordFile = join(options.dataDir, 'admin-password');
    await writeFile(adminPasswordFile, `${password}\n`, { mode: 0o600, flag: 'w' });
  }
  db.prepare(
    `INSERT INTO users (username, password_hash, is_staff, is_superuser, is_active, date_joined)
     VALUES (?, ?, 1, 1, 1, ?)`,
  ).run(options.adminUser, await hashPassword(password), nowIso());
  log.info(
    { user: options.adminUser, passwordFile: adminPasswordFile },
    adminPasswordFile
      ? `created admin user '${options.adminUser}'; its generated password is in ${adminPasswordFile}`
      : `created admin user '${options.adminUser}' with the configured password`,
  );
  return { adminPasswordFile };
}
