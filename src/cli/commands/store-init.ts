/**
 * `ferry store init --repo DIR [--new-key-file F | --key-file F | --passphrase-file F]
 * [--block-size 64K] [--fanout N] [--json]`: creates an empty repository. With
 * --new-key-file a random master key is written to F (mode 0600, never overwritten).
 *
 * `ferry store init --data-dir DIR` prepares a server data directory's store ahead of the
 * first `ferry server` start: DIR/store, keyed by DIR/store.key (created when missing).
 */
import { readFile } from 'node:fs/promises';
import {
  createKeyFile,
  findMasterKey,
  parseMasterKey,
  Repository,
  storeLayout,
  type MasterKey,
} from '../../store/index.js';
import { ensureDataDir, type DataDir } from '../../control/index.js';
import { InvalidArgumentError, StoreKeyRequiredError } from '../../errors/index.js';
import { needPositionals, parse, sizeOption } from '../args.js';
import { writeJson } from '../output.js';
import { exists, intOption, locateRepo, REPO_OPTIONS, REPO_USAGE } from './store-common.js';

const USAGE = `ferry store init ${REPO_USAGE} [--new-key-file F] [--block-size 64K] [--fanout 2048] [--label L] [--json]`;

export async function storeInit(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...REPO_OPTIONS,
      'new-key-file': { type: 'string' },
      'block-size': { type: 'string' },
      fanout: { type: 'string' },
      label: { type: 'string' },
    },
    USAGE,
  );
  needPositionals(positionals, 0, USAGE);
  const { backend, dir } = await locateRepo(values);
  if (dir && (values['new-key-file'] ?? values['key-file'] ?? values['passphrase-file']) !== undefined) {
    throw new InvalidArgumentError(
      `the server opens ${dir.storeDir} with ${dir.storeKeyPath} only; init creates that key ` +
        '(add more keys afterwards with `ferry store key add`)',
    );
  }
  // The data directory is private (0700), as the server makes it.
  if (dir) await ensureDataDir(dir);
  const blockSize = sizeOption(values['block-size'], 'block size') ?? storeLayout.DEFAULT_BLOCK_SIZE;
  const fanout = intOption(values.fanout, '--fanout') ?? storeLayout.DEFAULT_FANOUT;
  checkPowerOfTwo(blockSize, storeLayout.MIN_BLOCK_SIZE, storeLayout.MAX_BLOCK_SIZE, '--block-size');
  checkPowerOfTwo(fanout, storeLayout.MIN_FANOUT, storeLayout.MAX_FANOUT, '--fanout');
  const master = values['new-key-file']
    ? await createKeyFile(values['new-key-file'])
    : dir
      ? await dataDirKey(dir)
      : await findMasterKey({ keyFile: values['key-file'], passphraseFile: values['passphrase-file'] });
  if (!master) {
    throw new StoreKeyRequiredError(
      'store init needs a master key: --new-key-file F (creates one), --key-file, --passphrase-file, ' +
        'or FERRY_STORE_KEY / FERRY_STORE_KEY_FILE / FERRY_STORE_PASSPHRASE',
    );
  }
  const repo = await Repository.init(backend, master, {
    blockSize,
    fanout,
    label: values.label ?? (dir ? 'ferry server' : 'initial'),
  });
  const out = { repository: repo.location, id: repo.config.id, blockSize, fanout, keySlot: repo.slot.id };
  if (values.json) writeJson(out);
  else {
    process.stdout.write(
      `created repository ${repo.config.id} at ${repo.location} (block size ${blockSize}, key slot ${repo.slot.id})\n` +
        'Keep the master key safe and separate from the repository: without it the images cannot be read.\n',
    );
  }
  return 0;
}

/** DIR/store.key, as the server makes it at first start (see openStore in src/control). */
async function dataDirKey(dir: DataDir): Promise<MasterKey> {
  if (!(await exists(dir.storeKeyPath))) return createKeyFile(dir.storeKeyPath);
  return parseMasterKey(await readFile(dir.storeKeyPath), dir.storeKeyPath);
}

function checkPowerOfTwo(n: number, min: number, max: number, what: string): void {
  if (!storeLayout.isPowerOfTwo(n) || n < min || n > max) {
    throw new InvalidArgumentError(`${what} must be a power of two from ${min} to ${max}, got ${n}`);
  }
}
