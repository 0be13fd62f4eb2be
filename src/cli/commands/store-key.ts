/**
 * `ferry store key list|add|remove|rotate --repo DIR …`: key slots. Adding or rotating
 * re-wraps the repository key material under a new master key (no data is rewritten).
 *   add     --new-key-file F | --new-passphrase-file F [--label L]
 *   remove  SLOT-ID (never the last slot)
 *   rotate  --new-key-file F | --new-passphrase-file F: adds the new slot, then removes
 *           the slot the current key opened
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, toFerryError } from '../../errors/index.js';
import { createKeyFile, PassphraseMasterKey, type MasterKey, type Repository } from '../../store/index.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { openLocatedRepo, REPO_OPTIONS, REPO_USAGE } from './store-common.js';

const USAGE =
  `ferry store key list|add|remove|rotate ${REPO_USAGE} ` +
  '[--new-key-file F | --new-passphrase-file F] [--label L] [SLOT-ID] [--json]';

export async function storeKey(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...REPO_OPTIONS,
      'new-key-file': { type: 'string' },
      'new-passphrase-file': { type: 'string' },
      label: { type: 'string' },
    },
    USAGE,
  );
  const [action, ...rest] = positionals;
  const { repo, dir } = await openLocatedRepo(values);
  // A server opens its data directory's store with DIR/store.key only: removing the slot
  // that key opens would lock the server out of its images.
  const serverSlot = dir && values['key-file'] === undefined && values['passphrase-file'] === undefined;
  const lockout = (slotId: string) =>
    new InvalidArgumentError(
      `slot ${slotId} is the one ${dir?.storeKeyPath} opens, which the server uses; to rotate, ` +
        '`store key add --new-key-file F`, stop the server, replace store.key with F, then `store key remove` the old slot',
    );
  switch (action) {
    case 'list': {
      needPositionals(rest, 0, USAGE);
      const slots = (await repo.listSlots()).map((s) => ({
        id: s.id,
        kind: s.kind,
        label: s.label ?? '',
        created: s.created,
        current: s.id === repo.slot.id,
      }));
      if (values.json) writeJson(slots);
      else
        for (const s of slots)
          process.stdout.write(
            `${s.current ? '*' : ' '} ${s.id}  ${s.kind.padEnd(10)} ${s.created}  ${s.label}\n`,
          );
      return 0;
    }
    case 'add':
    case 'rotate': {
      needPositionals(rest, 0, USAGE);
      if (action === 'rotate' && serverSlot) throw lockout(repo.slot.id);
      const slot = await repo.addSlot(await newMaster(values), values.label);
      if (action === 'rotate') await repo.removeSlot(repo.slot.id);
      const out = {
        added: slot.id,
        kind: slot.kind,
        ...(action === 'rotate' ? { removed: repo.slot.id } : {}),
      };
      if (values.json) writeJson(out);
      else
        process.stdout.write(
          `added key slot ${slot.id}${action === 'rotate' ? `, removed ${repo.slot.id}` : ''}\n`,
        );
      return 0;
    }
    case 'remove': {
      const [slotId] = needPositionals(rest, 1, USAGE) as [string];
      if (serverSlot && slotId === repo.slot.id) throw lockout(slotId);
      await removeSlot(repo, slotId);
      if (values.json) writeJson({ removed: slotId });
      else process.stdout.write(`removed key slot ${slotId}\n`);
      return 0;
    }
    default:
      throw new InvalidArgumentError(`unknown key action ${JSON.stringify(action ?? '')}\nusage: ${USAGE}`);
  }
}

async function newMaster(values: {
  'new-key-file'?: string;
  'new-passphrase-file'?: string;
}): Promise<MasterKey> {
  if (values['new-key-file']) return createKeyFile(values['new-key-file']);
  if (values['new-passphrase-file']) {
    const text = await readFile(values['new-passphrase-file'], 'utf8').catch((err: unknown) => {
      throw toFerryError(err);
    });
    return new PassphraseMasterKey(text.replace(/\r?\n$/, ''));
  }
  throw new InvalidArgumentError('give the new key: --new-key-file F (created) or --new-passphrase-file F');
}

async function removeSlot(repo: Repository, slotId: string): Promise<void> {
  const slots = await repo.listSlots();
  if (!slots.some((s) => s.id === slotId)) throw new InvalidArgumentError(`no key slot ${slotId}`);
  if (slots.length === 1) {
    throw new InvalidArgumentError(
      'refusing to remove the last key slot: the repository could never be opened again',
    );
  }
  await repo.removeSlot(slotId);
}
