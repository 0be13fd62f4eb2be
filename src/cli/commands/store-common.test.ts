import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { dataDirKeyFile, locateRepo } from './store-common.js';

test('where the repository is: --repo, --data-dir, FERRY_STORE_REPO, then the default data directory', async () => {
  const env = { FERRY_DATA_DIR: '/srv/ferry-data' };
  const byRepo = await locateRepo({ repo: 'r' }, env);
  assert.equal(byRepo.backend.location, resolve('r'));
  assert.equal(byRepo.dir, undefined);

  const byDir = await locateRepo({ 'data-dir': 'd' }, { ...env, FERRY_STORE_REPO: '/elsewhere' });
  assert.equal(byDir.backend.location, join(resolve('d'), 'store'));
  assert.equal(byDir.dir?.storeKeyPath, join(resolve('d'), 'store.key'));

  const byEnvRepo = await locateRepo({}, { ...env, FERRY_STORE_REPO: '/elsewhere' });
  assert.equal(byEnvRepo.backend.location, '/elsewhere');

  const byDefault = await locateRepo({}, env);
  assert.equal(byDefault.backend.location, '/srv/ferry-data/store');
  const xdg = await locateRepo({}, { XDG_DATA_HOME: '/xdg' });
  assert.equal(xdg.backend.location, '/xdg/ferry/store');

  await assert.rejects(locateRepo({ repo: 'r', 'data-dir': 'd' }, env), {
    code: 'FERRY_INVALID_ARGUMENT',
    message: /exclude each other/,
  });
  await assert.rejects(locateRepo({ repo: 'ftp://x/y' }, env), { code: 'FERRY_INVALID_ARGUMENT' });
});

test("a data directory's store opens with DIR/store.key unless a key is given", async () => {
  const { dir } = await locateRepo({ 'data-dir': '/d' }, {});
  assert.ok(dir);
  assert.equal(dataDirKeyFile({}, dir), '/d/store.key');
  assert.equal(dataDirKeyFile({ 'key-file': '/backup/key' }, dir), '/backup/key');
  assert.equal(dataDirKeyFile({ 'passphrase-file': '/p' }, dir), undefined);
});
