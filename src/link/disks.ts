/**
 * Disks over a link (docs/connector-protocol.md, "Disks"): one end serves disks it opened
 * by handle — `<prefix>.open` / `.map` / `.read` / `.close` — and the other reads them as
 * a DiskLayer. Connectors serve source disks to the server (`disk.*`); the server serves
 * images to launch hosts (`image.*`). Every handle, range and count from the peer is
 * checked before use; a reader reopens its disk on a new link after a drop and sends the
 * failed call again, so a long read survives a reconnect.
 */
import type { Disk, DiskLayer } from '../disk/index.js';
import {
  InvalidArgumentError,
  LinkDownError,
  LinkProtocolError,
  NotFoundError,
  toFerryError,
  type FerryError,
} from '../errors/index.js';
import { int, type Params } from './params.js';
import type { Handler, LinkPeer } from './peer.js';
import { MAX_CALL_RETRIES, type LinkCaller } from './slot.js';

/** Disks open at once per link (a run opens one per server disk; a few runs at once). */
export const MAX_OPEN_DISKS = 64;
/** Largest read one call may ask for. */
export const MAX_READ = 4 << 20;
/** Extents per map answer (17 bytes each in the body); the caller continues after the last. */
export const MAX_EXTENTS = 65_536;

const KINDS = ['data', 'zero', 'unallocated', 'compressed'] as const;

export interface OpenedDisk {
  readonly disk: Disk;
  /** Extra fields of the open answer (what the reader needs to know about the disk). */
  readonly result?: Params;
}

export interface DiskService {
  readonly handlers: Record<string, Handler>;
  /** Closes every disk the peer left open (the link dropped). */
  closeAll(): Promise<void>;
}

/** Serves the disks `open` opens, under `<prefix>.*`. */
export function serveDisks(prefix: string, open: (p: Params) => Promise<OpenedDisk>): DiskService {
  const disks = new Map<number, Disk>();
  let nextHandle = 1;
  const disk = (p: Params) => {
    const d = disks.get(int(p, 'handle', 1, Number.MAX_SAFE_INTEGER));
    if (!d)
      throw new NotFoundError('link call: no such open disk (the peer restarted?)', { resource: 'disk' });
    return d;
  };
  const range = (p: Params, d: Disk, max: number) => {
    const offset = int(p, 'offset', 0, d.virtualSize);
    const length = int(p, 'length', 0, Math.min(max, d.virtualSize - offset));
    return { offset, length };
  };
  return {
    handlers: {
      [`${prefix}.open`]: async (p) => {
        if (disks.size >= MAX_OPEN_DISKS)
          throw new InvalidArgumentError(`more than ${MAX_OPEN_DISKS} disks open on this link`);
        const o = await open(p);
        const handle = nextHandle++;
        disks.set(handle, o.disk);
        return { result: { ...o.result, handle, virtualSize: o.disk.virtualSize } };
      },
      [`${prefix}.map`]: async (p) => {
        const d = disk(p);
        const { offset, length } = range(p, d, Number.MAX_SAFE_INTEGER);
        const out = Buffer.allocUnsafe(Math.min(MAX_EXTENTS, 1 + Math.ceil(length / 512)) * 17);
        let n = 0;
        if (length > 0) {
          for await (const e of d.map(offset, length)) {
            out.writeBigUInt64BE(BigInt(e.offset), n * 17);
            out.writeBigUInt64BE(BigInt(e.length), n * 17 + 8);
            out.writeUInt8(KINDS.indexOf(e.kind), n * 17 + 16);
            if (++n * 17 === out.length) break; // full: the caller continues after the last
          }
        }
        return { body: out.subarray(0, n * 17) };
      },
      [`${prefix}.read`]: async (p) => {
        const d = disk(p);
        const { offset, length } = range(p, d, MAX_READ);
        return { body: await d.read(offset, length) };
      },
      [`${prefix}.close`]: async (p) => {
        const handle = int(p, 'handle', 1, Number.MAX_SAFE_INTEGER);
        const d = disks.get(handle);
        disks.delete(handle);
        await d?.close();
      },
    },
    async closeAll() {
      const open = [...disks.values()];
      disks.clear();
      await Promise.allSettled(open.map((d) => d.close()));
    },
  };
}

/** Decodes a `.map` body (17 bytes per extent) with its bounds checked. */
export function decodeExtents(body: Buffer, offset: number, length: number) {
  if (body.length % 17 !== 0) throw new LinkProtocolError('link map answer is not whole extents');
  const out: { offset: number; length: number; kind: (typeof KINDS)[number] }[] = [];
  let at = offset;
  for (let i = 0; i < body.length; i += 17) {
    const o = Number(body.readBigUInt64BE(i));
    const l = Number(body.readBigUInt64BE(i + 8));
    const kind = KINDS[body.readUInt8(i + 16)];
    if (!kind || o !== at || l <= 0 || o + l > offset + length)
      throw new LinkProtocolError('link map answer is not a contiguous cover of the range asked');
    out.push({ offset: o, length: l, kind });
    at = o + l;
  }
  return out;
}

const isLinkLoss = (e: FerryError) =>
  e.code === 'FERRY_LINK_DOWN' ||
  e.code === 'FERRY_LINK_TIMEOUT' ||
  (e.code === 'FERRY_NOT_FOUND' && e.details.resource === 'disk');

/** One disk the other end serves under `<prefix>.*`, read by range and reopened after a drop. */
export class LinkDiskLayer implements DiskLayer {
  info: DiskLayer['info'];
  readonly #caller: LinkCaller;
  readonly #prefix: string;
  readonly #params: Params;
  #handle: { id: number; peer: LinkPeer } | undefined;
  #closed = false;
  /** Opened once: a reopen after a drop must find the same disk. */
  #opened = false;

  constructor(caller: LinkCaller, prefix: string, params: Params, subformat = 'remote') {
    this.#caller = caller;
    this.#prefix = prefix;
    this.#params = params;
    this.info = {
      format: 'raw',
      subformat,
      virtualSize: 0,
      clusterSize: 512,
      fileSize: 0,
      files: [],
      warnings: [],
      details: {},
    };
  }

  /** Opens the disk on the current link (waiting for one); the answer's fields. */
  async open(): Promise<Params> {
    const r = await this.#caller.call(`${this.#prefix}.open`, this.#params);
    const out = r.result as Params & { handle: number; virtualSize: number };
    if (!Number.isSafeInteger(out.handle) || !Number.isSafeInteger(out.virtualSize) || out.virtualSize < 0)
      throw new LinkProtocolError('malformed disk open answer');
    if (this.#opened && out.virtualSize !== this.info.virtualSize)
      throw new LinkProtocolError('the reopened disk changed size; start again');
    this.info = { ...this.info, virtualSize: out.virtualSize };
    this.#opened = true;
    this.#handle = { id: out.handle, peer: r.peer };
    return out;
  }

  async map(offset: number, length: number) {
    const out = [];
    let at = offset;
    while (at < offset + length) {
      const body = await this.#withHandle((handle) =>
        this.#call('map', { handle, offset: at, length: offset + length - at }),
      );
      const extents = decodeExtents(body, at, offset + length - at);
      if (extents.length === 0) throw new LinkProtocolError('the peer answered an empty map');
      out.push(...extents);
      at = extents[extents.length - 1]!.offset + extents[extents.length - 1]!.length;
    }
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (length <= MAX_READ)
      return this.#withHandle((handle) => this.#call('read', { handle, offset, length }));
    const parts: Buffer[] = [];
    for (let at = offset; at < offset + length; at += MAX_READ)
      parts.push(await this.read(at, Math.min(MAX_READ, offset + length - at)));
    return Buffer.concat(parts);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const h = this.#handle;
    this.#handle = undefined;
    if (h && !h.peer.closed)
      await h.peer.call(`${this.#prefix}.close`, { handle: h.id }).catch(() => undefined);
  }

  async #call(op: 'map' | 'read', params: Params): Promise<Buffer> {
    const h = this.#handle!;
    const r = await h.peer.call(`${this.#prefix}.${op}`, params);
    if (op === 'read' && r.body.length !== params.length)
      throw new LinkProtocolError(`the peer answered ${r.body.length} bytes for ${String(params.length)}`);
    return r.body;
  }

  async #withHandle<T>(fn: (handle: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new LinkDownError('the disk was closed');
      if (!this.#handle || this.#handle.peer.closed) await this.open();
      try {
        return await fn(this.#handle!.id);
      } catch (err) {
        const fe = toFerryError(err);
        if (!isLinkLoss(fe) || attempt >= MAX_CALL_RETRIES) throw fe;
        this.#handle = undefined;
      }
    }
  }
}
