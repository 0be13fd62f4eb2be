import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DynamicHeader, LocatorEntry } from './header.js';
import { PLATFORM } from './layout.js';
import { chooseParent, decodeLocator } from './locator.js';
import { decodeUtf16 } from './text.js';
import { utf16be, utf16le } from './testkit.js';

const entry = (platform: number, index = 0): LocatorEntry => ({
  index,
  platform,
  dataSpace: 512,
  dataLength: 0,
  dataOffset: 0,
});

function header(locators: LocatorEntry[], parentName = ''): DynamicHeader {
  return {
    tableOffset: 1536,
    version: 0x10000,
    maxTableEntries: 1,
    blockSize: 2 << 20,
    bitmapSize: 512,
    parentId: '00000000-0000-0000-0000-000000000000',
    parentTimestamp: 0,
    parentName,
    locators,
  };
}

test('UTF-16 text: usual order, BOMs and the position of zero bytes decide the byte order', () => {
  assert.equal(decodeUtf16(utf16le('.\\base.vhd\0junk'), 'le'), '.\\base.vhd');
  assert.equal(decodeUtf16(utf16be('base.vhd'), 'le'), 'base.vhd');
  assert.equal(decodeUtf16(utf16le('base.vhd'), 'be'), 'base.vhd');
  assert.equal(decodeUtf16(Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be('é.vhd')]), 'le'), 'é.vhd');
  assert.equal(decodeUtf16(Buffer.alloc(512), 'be'), '');
});

test('locators decode per platform; relative ones win, then absolute, then the parent name', () => {
  assert.equal(decodeLocator(entry(PLATFORM.W2ru), utf16le('.\\a.vhd')), '.\\a.vhd');
  assert.equal(decodeLocator(entry(PLATFORM.Wi2r), Buffer.from('.\\old.vhd\0')), '.\\old.vhd');
  assert.equal(
    decodeLocator(entry(PLATFORM.MacX), Buffer.from('file://localhost/Users/x/a%20b.vhd')),
    '/Users/x/a b.vhd',
  );
  assert.equal(decodeLocator(entry(PLATFORM.Mac), Buffer.from('alias')), undefined);
  const all = [entry(PLATFORM.W2ku, 0), entry(PLATFORM.Mac, 1), entry(PLATFORM.W2ru, 2)];
  assert.deepEqual(chooseParent(header(all), ['C:\\vm\\a.vhd', undefined, '.\\a.vhd'], 'x'), {
    name: '.\\a.vhd',
    source: 'W2ru',
  });
  assert.deepEqual(chooseParent(header(all.slice(0, 2), 'a.vhd'), ['C:\\vm\\a.vhd', undefined], 'x'), {
    name: 'C:\\vm\\a.vhd',
    source: 'W2ku',
  });
  assert.deepEqual(chooseParent(header([entry(PLATFORM.Mac)], 'C:\\vm\\base.vhd'), [undefined], 'x'), {
    name: 'base.vhd',
    source: 'parent-name',
  });
  assert.deepEqual(chooseParent(header([entry(PLATFORM.W2ru)], 'b.vhd'), [''], 'x'), {
    name: 'b.vhd',
    source: 'parent-name',
  });
  assert.throws(() => chooseParent(header([], '..'), [], 'x'), /names no parent/);
  assert.throws(() => chooseParent(header([]), [], 'x'), /names no parent/);
});
