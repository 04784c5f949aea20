/**
 * Users in the database: lookups, creation, password changes and the reference's user JSON.
 */
import { UfdlError } from '../../protocol/errors.js';
import type { UserJson } from '../../protocol/wire.js';
import type { UserRow } from '../context.js';
import { nowIso, type Db } from './db.js';

/** Django's username rule: letters, digits and `@ . + - _`, at most 150 characters. */
export const USERNAME_PATTERN = /^[\w.@+-]{1,150}$/;

export interface NewUser {
  username: string;
  passwordHash: string;
  isStaff: boolean;
  email: string;
  firstName: string;
  lastName: string;
  isWorker?: boolean;
}

export function userJson(row: UserRow): UserJson {
  return {
    username: row.username,
    pk: row.pk,
    last_login: row.last_login,
    is_superuser: row.is_superuser === 1,
    first_name: row.first_name,
    last_name: row.last_name,
    email: row.email,
    is_staff: row.is_staff === 1,
    is_active: row.is_active === 1,
    date_joined: row.date_joined,
  };
}

export function getUserByName(db: Db, username: string): UserRow | undefined {
  // No stored name holds a NUL (JSON bodies may not carry one): a URL's `%00` names no user. Not
  // asked, since PostgreSQL refuses the text (400 "invalid byte sequence") where SQLite finds none.
  if (username.includes('\u0000')) return undefined;
  return db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
}

export function getUserByPk(db: Db, pk: number): UserRow | undefined {
  return db.prepare('SELECT * FROM users WHERE pk = ?').get(pk) as UserRow | undefined;
}

/** Insert a user; a taken name is a 400 `UFDL_ERR_USER_EXISTS`. */
export function createUser(db: Db, user: NewUser): UserRow {
  return db.transaction(() => {
    if (getUserByName(db, user.username)) {
      throw new UfdlError('UFDL_ERR_USER_EXISTS', `A user named '${user.username}' already exists`);
    }
    const result = db
      .prepare(
        `INSERT INTO users (username, password_hash, is_staff, is_superuser, is_active, first_name, last_name, email, date_joined, is_worker)
         VALUES (?, ?, ?, 0, 1, ?, ?, ?, ?, ?)`,
      )
      .run(user.username, user.passwordHash, user.isStaff ? 1 : 0, user.firstName, user.lastName, user.email, nowIso(), user.isWorker ? 1 : 0);
    return getUserByPk(db, Number(result.lastInsertRowid))!;
  })();
}

/**
 * Change user `pk`'s password hash; every token issued before is revoked (the user's token
 * generation moves on). Done on behalf of `caller`, and only while the caller's token is still good:
 * the caller active and of the token generation it was authenticated with, checked in the statement
 * that writes, so that a change whose hashing outlasted a revocation (another password change, a
 * deactivation) cannot undo it. Returns whether the password was changed.
 */
export function setPasswordHashAsCaller(db: Db, pk: number, passwordHash: string, caller: Pick<UserRow, 'pk' | 'token_generation'>): boolean {
  const result = db
    .prepare(
      `UPDATE users SET password_hash = ?, token_generation = token_generation + 1 WHERE pk = ?
         AND EXISTS (SELECT 1 FROM users c WHERE c.pk = ? AND c.is_active = 1 AND c.token_generation = ?)`,
    )
    .run(passwordHash, pk, caller.pk, caller.token_generation);
  return result.changes > 0;
}

/** Make a user a worker account (or not): see `nodeActions`. */
export function setWorker(db: Db, pk: number, isWorker: boolean): void {
  db.prepare('UPDATE users SET is_worker = ? WHERE pk = ?').run(isWorker ? 1 : 0, pk);
}

export function touchLastLogin(db: Db, pk: number): void {
  db.prepare('UPDATE users SET last_login = ? WHERE pk = ?').run(nowIso(), pk);
}
