/**
 * Where a master key comes from: a key file, an environment variable, or a passphrase
 * (from a file or the environment). Precedence: explicit options first, then
 * FERRY_STORE_KEY_FILE, FERRY_STORE_KEY, FERRY_STORE_PASSPHRASE_FILE, FERRY_STORE_PASSPHRASE.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { OutputExistsError, StoreKeyRequiredError, toFerryError } from '../../errors/index.js';
import {
  formatMasterKey,
  parseMasterKey,
  PassphraseMasterKey,
  RawMasterKey,
  type MasterKey,
} from './master.js';

export interface KeySourceOptions {
  readonly keyFile?: string | undefined;
  readonly passphraseFile?: string | undefined;
  /** Defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export const KEY_ENV = {
  keyFile: 'FERRY_STORE_KEY_FILE',
  key: 'FERRY_STORE_KEY',
  passphraseFile: 'FERRY_STORE_PASSPHRASE_FILE',
  passphrase: 'FERRY_STORE_PASSPHRASE',
} as const;

/** The master key the options or the environment name; undefined when none is given. */
export async function findMasterKey(options: KeySourceOptions = {}): Promise<MasterKey | undefined> {
  const env = options.env ?? process.env;
  if (options.keyFile) return parseMasterKey(await readSecret(options.keyFile), options.keyFile);
  if (options.passphraseFile) return passphraseFrom(await readSecret(options.passphraseFile));
  const keyFile = env[KEY_ENV.keyFile];
  if (keyFile) return parseMasterKey(await readSecret(keyFile), keyFile);
  const key = env[KEY_ENV.key];
  if (key) return parseMasterKey(key, KEY_ENV.key);
  const passFile = env[KEY_ENV.passphraseFile];
  if (passFile) return passphraseFrom(await readSecret(passFile));
  const pass = env[KEY_ENV.passphrase];
  if (pass) return new PassphraseMasterKey(pass);
  return undefined;
}

export async function requireMasterKey(options: KeySourceOptions = {}): Promise<MasterKey> {
  const key = await findMasterKey(options);
  if (!key) {
    throw new StoreKeyRequiredError(
      `no master key: pass --key-file or --passphrase-file, or set ${KEY_ENV.keyFile}, ` +
        `${KEY_ENV.key} or ${KEY_ENV.passphrase}`,
    );
  }
  return key;
}

/** Creates a new random master key in `path` (mode 0600, never overwriting). */
export async function createKeyFile(path: string): Promise<RawMasterKey> {
  const { key, master } = RawMasterKey.generate();
  try {
    await writeFile(path, formatMasterKey(key), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new OutputExistsError(`${path} already exists; a key file is never overwritten`, { path });
    }
    throw toFerryError(err);
  }
  return master;
}

async function readSecret(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw toFerryError(err);
  }
}

function passphraseFrom(buf: Buffer): PassphraseMasterKey {
  // A trailing newline is an artifact of `echo … > file`, not part of the passphrase.
  return new PassphraseMasterKey(buf.toString('utf8').replace(/\r?\n$/, ''));
}
