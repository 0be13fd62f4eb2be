import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import { currentVersion, migrate, MIGRATIONS, openDatabase, type Migration } from './index.js';
import { toPostgresPlaceholders } from './params.js';
import { Mutex } from './mutex.js';

test('? placeholders become $n outside quoted text', () => {
  assert.equal(
    toPostgresPlaceholders(`SELECT '?' AS q, "a?" FROM t WHERE a = ? AND b IN (?, ?)`),
    `SELECT '?' AS q, "a?" FROM t WHERE a = $1 AND b IN ($2, $3)`,
  );
});

test('the mutex serves holders one at a time, in order', async () => {
  const m = new Mutex();
  const order: string[] = [];
  await Promise.all(
    ['a', 'b', 'c'].map((n) =>
      m.run(async () => {
        order.push(`${n}+`);
        await new Promise((r) => setTimeout(r, 5));
        order.push(`${n}-`);
      }),
    ),
  );
  assert.deepEqual(order, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
});

test('an unknown URL scheme is refused with a coded error', async () => {
  await assert.rejects(openDatabase('mysql://x/y'), { code: 'FERRY_INVALID_ARGUMENT' });
});

test('an unreachable PostgreSQL is FERRY_DATABASE_UNAVAILABLE, quickly', async () => {
  const started = Date.now();
  await assert.rejects(openDatabase('postgres://nobody@127.0.0.1:1/none'), {
    code: 'FERRY_DATABASE_UNAVAILABLE',
  });
  assert.ok(Date.now() - started < 6000);
});

for (const dialect of DIALECTS) {
  describe(`database (${dialect})`, () => {
    test('values round-trip: text, BIGINT epoch ms as numbers, booleans as 0/1, NULL', async () => {
      const t = await openTestDatabase(dialect);
      try {
        await t.db.run('CREATE TABLE t (id TEXT PRIMARY KEY, at BIGINT, flag INTEGER, note TEXT)');
        await t.db.run('INSERT INTO t (id, at, flag, note) VALUES (?, ?, ?, ?)', [
          'a',
          1_700_000_000_123,
          true,
          null,
        ]);
        const row = await t.db.get<{ id: string; at: number; flag: number; note: null }>('SELECT * FROM t');
        assert.deepEqual({ ...row }, { id: 'a', at: 1_700_000_000_123, flag: 1, note: null });
        const n = await t.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM t');
        assert.equal(n?.n, 1);
        assert.equal(typeof n?.n, 'number');
      } finally {
        await t.close();
      }
    });

    test('a transaction commits on success and rolls back on a throw', async () => {
      const t = await openTestDatabase(dialect);
      try {
        await t.db.run('CREATE TABLE t (id TEXT PRIMARY KEY)');
        await t.db.transaction(async (tx) => {
          await tx.run('INSERT INTO t (id) VALUES (?)', ['kept']);
        });
        await assert.rejects(
          t.db.transaction(async (tx) => {
            await tx.run('INSERT INTO t (id) VALUES (?)', ['dropped']);
            throw new Error('boom');
          }),
          /boom/,
        );
        const rows = await t.db.all<{ id: string }>('SELECT id FROM t ORDER BY id');
        assert.deepEqual(
          rows.map((r) => r.id),
          ['kept'],
        );
      } finally {
        await t.close();
      }
    });

    test('concurrent read-modify-write transactions lose no update', async () => {
      const t = await openTestDatabase(dialect);
      try {
        await t.db.run('CREATE TABLE c (id TEXT PRIMARY KEY, n INTEGER NOT NULL)');
        await t.db.run("INSERT INTO c (id, n) VALUES ('x', 0)");
        await Promise.all(
          Array.from({ length: 8 }, () =>
            t.db.transaction(async (tx) => {
              const row = await tx.get<{ n: number }>("SELECT n FROM c WHERE id = 'x'");
              await new Promise((r) => setTimeout(r, 2));
              await tx.run("UPDATE c SET n = ? WHERE id = 'x'", [Number(row?.n) + 1]);
            }),
          ),
        );
        assert.equal((await t.db.get<{ n: number }>("SELECT n FROM c WHERE id = 'x'"))?.n, 8);
      } finally {
        await t.close();
      }
    });

    test('a duplicate key is FERRY_DATABASE_CONFLICT', async () => {
      const t = await openTestDatabase(dialect);
      try {
        await t.db.run('CREATE TABLE t (id TEXT PRIMARY KEY)');
        await t.db.run('INSERT INTO t (id) VALUES (?)', ['a']);
        await assert.rejects(t.db.run('INSERT INTO t (id) VALUES (?)', ['a']), {
          code: 'FERRY_DATABASE_CONFLICT',
        });
      } finally {
        await t.close();
      }
    });

    test('migrations are applied once, recorded, and idempotent', async () => {
      const t = await openTestDatabase(dialect);
      try {
        assert.equal(await currentVersion(t.db), MIGRATIONS.length);
        const again = await migrate(t.db, MIGRATIONS);
        assert.deepEqual(again.applied, []);
        const extra: Migration = {
          version: MIGRATIONS.length + 1,
          name: 'test column',
          statements: () => ['ALTER TABLE settings ADD COLUMN extra TEXT'],
        };
        const r = await migrate(t.db, [...MIGRATIONS, extra]);
        assert.deepEqual(r.applied, [`${extra.version} test column`]);
        // Two migrators at once (two processes starting): each step applies exactly once.
        const more: Migration = {
          ...extra,
          version: extra.version + 1,
          name: 'x',
          statements: () => ['CREATE TABLE x1 (a TEXT)'],
        };
        const both = await Promise.all([
          migrate(t.db, [...MIGRATIONS, extra, more]),
          migrate(t.db, [...MIGRATIONS, extra, more]),
        ]);
        assert.equal(both.flatMap((b) => b.applied).length, 1);
      } finally {
        await t.close();
      }
    });

    test('a schema newer than this build is refused', async () => {
      const t = await openTestDatabase(dialect);
      try {
        await t.db.run('INSERT INTO ferry_schema (version, name, applied_at) VALUES (?, ?, ?)', [
          999,
          'future',
          0,
        ]);
        await assert.rejects(migrate(t.db, MIGRATIONS), { code: 'FERRY_DATABASE_SCHEMA_TOO_NEW' });
      } finally {
        await t.close();
      }
    });
  });
}
