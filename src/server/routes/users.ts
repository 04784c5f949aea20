/**
 * Users: `GET /v1/users/{username}` (the reference's get-by-name, a one-element array; yourself, or
 * anyone for admins), and the admin routes the reference leaves to Django's admin site: create a
 * user, list users, and set a password (yourself or, for admins, anyone).
 */
import { forbidden, notFound, parseWith } from '../../protocol/error-constructors.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { UfdlError } from '../../protocol/errors.js';
import { FilterSpecSchema } from '../../protocol/filter.js';
import type { UserJson } from '../../protocol/wire.js';
import { hashPassword } from '../auth.js';
import type { UserRow } from '../context.js';
import { bodyOrEmpty } from '../field-errors.js';
import { requireAdmin, requireUser } from '../identity.js';
import { compileFilter, type FieldTable } from '../store/filter-sql.js';
import { USERNAME_PATTERN, createUser, getUserByName, setPasswordHashAsCaller, setWorker, userJson } from '../store/users.js';

const PasswordSchema = z
  .string({ error: 'must be a string' })
  .min(8, { error: 'must be at least 8 characters long' })
  .max(1024, { error: 'must be at most 1024 characters long' });

const CreateUserSchema = z.strictObject({
  username: z.string({ error: 'must be a string' }).regex(USERNAME_PATTERN, {
    error: 'must be 1 to 150 letters, digits or @ . + - _',
  }),
  password: PasswordSchema,
  is_staff: z.boolean().optional(),
  /** Extension: a worker account (see `nodeActions`). */
  is_worker: z.boolean().optional(),
  email: z.union([z.literal(''), z.email({ error: 'must be an e-mail address' })]).optional(),
  first_name: z.string().max(150).optional(),
  last_name: z.string().max(150).optional(),
});

const SetPasswordSchema = z.strictObject({ password: PasswordSchema });
const SetWorkerSchema = z.strictObject({ is_worker: z.boolean({ error: 'must be true or false' }) });

const USER_FIELDS: FieldTable = {
  pk: { sql: 'pk', kind: 'int' },
  username: { sql: 'username', kind: 'text' },
  email: { sql: 'email', kind: 'text' },
  first_name: { sql: 'first_name', kind: 'text' },
  last_name: { sql: 'last_name', kind: 'text' },
  is_staff: { sql: 'is_staff', kind: 'bool' },
  is_superuser: { sql: 'is_superuser', kind: 'bool' },
  is_active: { sql: 'is_active', kind: 'bool' },
  date_joined: { sql: 'date_joined', kind: 'time' },
  last_login: { sql: 'last_login', kind: 'time' },
};

export async function usersRoutes(app: FastifyInstance): Promise<void> {
  const { db, options } = app.ufdl;
  // The worker flag means something only when node actions are limited to workers; only then is it
  // shown, so that the user JSON stays the reference's otherwise.
  const toJson = (user: UserRow): UserJson => (options.nodeActions === 'workers' ? { ...userJson(user), is_worker: user.is_worker === 1 } : userJson(user));

  /**
   * The user a request may see or change: itself, or for admins anyone. A non-admin asking about
   * someone else gets 403 whether or not that user exists, so names cannot be probed.
   */
  const targetUser = (request: FastifyRequest<{ Params: { username: string } }>): UserRow => {
    const caller = requireUser(request);
    const { username } = request.params;
    if (caller.username !== username && !caller.is_staff) throw forbidden();
    // Its whole row (the request carries only what permissions need: `CallerUser`).
    const user = getUserByName(db, username);
    if (!user) throw notFound();
    return user;
  };

  app.post('/v1/users/create', async (request, reply) => {
    requireAdmin(request);
    const body = parseWith(CreateUserSchema, bodyOrEmpty(request.body));
    const user = createUser(db, {
      username: body.username,
      passwordHash: await hashPassword(body.password),
      isStaff: body.is_staff ?? false,
      email: body.email ?? '',
      firstName: body.first_name ?? '',
      lastName: body.last_name ?? '',
      isWorker: body.is_worker ?? false,
    });
    return reply.code(201).send(toJson(user));
  });

  app.post('/v1/users/list', async (request): Promise<UserJson[]> => {
    requireAdmin(request);
    const spec = parseWith(FilterSpecSchema, bodyOrEmpty(request.body), 'filter');
    const { where, params, orderBy } = compileFilter(spec, USER_FIELDS, { defaultOrder: 'pk ASC' });
    // For users, "inactive" means is_active = 0 rather than soft-deleted.
    const active = spec.include_inactive ? '' : ' AND is_active = 1';
    const rows = db.prepare(`SELECT * FROM users WHERE (${where})${active} ORDER BY ${orderBy}`).all(...params) as UserRow[];
    return rows.map(toJson);
  });

  app.get<{ Params: { username: string } }>('/v1/users/:username', async (request): Promise<UserJson[]> => {
    return [toJson(targetUser(request))];
  });

  app.post<{ Params: { username: string } }>('/v1/users/:username/set-password', async (request): Promise<UserJson> => {
    const user = targetUser(request);
    const { password } = parseWith(SetPasswordSchema, bodyOrEmpty(request.body));
    const hash = await hashPassword(password);
    // The hash took tens of milliseconds: the caller's token may have been revoked meanwhile.
    if (!setPasswordHashAsCaller(db, user.pk, hash, requireUser(request))) {
      if (!getUserByName(db, user.username)) throw notFound();
      throw new UfdlError('UFDL_ERR_AUTH_BAD_TOKEN', 'Token was revoked while the password was being changed; log in again', {
        extra: { code: 'token_not_valid' },
      });
    }
    return toJson(user);
  });

  if (options.extensions) {
    // Extension: make a user a worker account, or not (admin).
    app.put<{ Params: { username: string } }>('/v1/users/:username/worker', async (request): Promise<UserJson> => {
      requireAdmin(request);
      const { is_worker } = parseWith(SetWorkerSchema, bodyOrEmpty(request.body));
      const user = getUserByName(db, request.params.username);
      if (!user) throw notFound();
      setWorker(db, user.pk, is_worker);
      return { ...userJson(user), is_worker };
    });
  }
}
