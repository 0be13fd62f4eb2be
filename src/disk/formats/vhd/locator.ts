/**
 * Parent locators of a differencing VHD → the one name the engine should open.
 *
 * Preference (the spec's own advice: relative first, so a copied chain still works):
 *   1. W2ru  Windows relative path (UTF-16)          e.g. ".\base.vhd"
 *   2. Wi2r  deprecated Windows relative path
 *   3. W2ku  Windows absolute path (UTF-16)          e.g. "C:\VMs\base.vhd"
 *   4. Wi2k  deprecated Windows absolute path
 *   5. MacX  file URL (UTF-8)                        e.g. "file://localhost/Users/x/base.vhd"
 *   6. no usable locator at all: the base name of the header's parent name, in the child's
 *      directory (the parent name is a file name by the spec; only its last component is
 *      used, so it can never leave the directory).
 * Absolute names are reported as stored: the engine's reference policy refuses them unless
 * the user passes --allow-external-references. "Mac " alias records are opaque and skipped.
 */
import { ImageCorruptError } from '../../../errors/index.js';
import type { DynamicHeader, LocatorEntry } from './header.js';
import { PLATFORM } from './layout.js';
import { decodeUtf16, decodeUtf8 } from './text.js';

export type LocatorSource = 'W2ru' | 'Wi2r' | 'W2ku' | 'Wi2k' | 'MacX' | 'parent-name';

export interface ParentChoice {
  readonly name: string;
  readonly source: LocatorSource;
}

const PREFERENCE: readonly Exclude<LocatorSource, 'parent-name'>[] = ['W2ru', 'Wi2r', 'W2ku', 'Wi2k', 'MacX'];

export function platformName(code: number): string {
  const known = (Object.keys(PLATFORM) as (keyof typeof PLATFORM)[]).find((k) => PLATFORM[k] === code);
  return known ?? `0x${code.toString(16).padStart(8, '0')}`;
}

/** The path a locator's payload names, or undefined when it holds no usable path. */
export function decodeLocator(entry: LocatorEntry, data: Buffer): string | undefined {
  switch (entry.platform) {
    case PLATFORM.W2ru:
    case PLATFORM.W2ku:
      return decodeUtf16(data, 'le');
    case PLATFORM.Wi2r:
    case PLATFORM.Wi2k:
      // Deprecated; Virtual PC wrote 8-bit text, some tools UTF-16: zero bytes tell them apart.
      return data.length >= 2 && (data[0] === 0 || data[1] === 0)
        ? decodeUtf16(data, 'le')
        : decodeUtf8(data);
    case PLATFORM.MacX:
      return fileUrlToPath(decodeUtf8(data));
    default:
      return undefined;
  }
}

/** "file://localhost/a%20b" → "/a b"; anything else is returned unchanged (and refused later). */
function fileUrlToPath(url: string): string {
  const m = /^file:\/\/(?:localhost)?(\/.*)$/i.exec(url);
  if (!m) return url;
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    return m[1] as string;
  }
}

/**
 * Picks the parent reference from decoded locators (`decoded[i]` for header.locators[i]).
 * Throws when a differencing disk names no parent at all.
 */
export function chooseParent(
  header: DynamicHeader,
  decoded: readonly (string | undefined)[],
  name: string,
): ParentChoice {
  for (const source of PREFERENCE) {
    for (let i = 0; i < header.locators.length; i++) {
      const entry = header.locators[i] as LocatorEntry;
      const value = decoded[i];
      if (platformName(entry.platform) === source && value !== undefined && value.length > 0) {
        return { name: value, source };
      }
    }
  }
  const base = header.parentName.split(/[\\/]/).pop() ?? '';
  if (base.length > 0 && base !== '.' && base !== '..') return { name: base, source: 'parent-name' };
  throw new ImageCorruptError(`${name}: differencing VHD names no parent (no locator and no parent name)`, {
    format: 'vhd',
    file: name,
    field: 'header.parentLocator',
    value: header.locators.length,
  });
}
