/**
 * The replayed log, in memory: the log's writes flattened into sorted, disjoint segments
 * (later writes win), and a ByteSource that reads the file through them. Everything after
 * the headers (region tables, metadata, BAT, sector bitmaps, payload) is read through it,
 * so a VHDX with a pending log reads exactly as if the log had been replayed, and the file
 * is never modified.
 */
import { checkRead, type ByteSource } from '../../io/byte-source.js';
import type { LogWrite } from './log.js';

export interface Segment {
  readonly start: number;
  readonly end: number;
  /** Bytes for [start, end) begin at data[dataOffset]; zeros when absent. */
  readonly data?: Buffer;
  readonly dataOffset: number;
}

/**
 * Flattens ordered writes into disjoint segments: a sweep over the write boundaries with a
 * max-heap of the writes covering the current point (by replay order). O(n log n), so a
 * log of many overlapping zero descriptors costs no more than a sort.
 */
export function flatten(writes: readonly LogWrite[]): Segment[] {
  const n = writes.length;
  if (n === 0) return [];
  const bounds = new Float64Array(2 * n);
  writes.forEach((w, i) => {
    bounds[2 * i] = w.start;
    bounds[2 * i + 1] = w.end;
  });
  bounds.sort();
  const byStart = [...writes.keys()].sort(
    (a, b) => (writes[a] as LogWrite).start - (writes[b] as LogWrite).start,
  );
  const heap: number[] = []; // write indexes, max-heap by index (= replay order)
  const out: Segment[] = [];
  let next = 0;
  for (let k = 0; k + 1 < bounds.length; k++) {
    const from = bounds[k] as number;
    const to = bounds[k + 1] as number;
    if (to === from) continue;
    while (next < n && (writes[byStart[next] as number] as LogWrite).start <= from)
      heapPush(heap, byStart[next++] as number);
    while (heap.length > 0 && (writes[heap[0] as number] as LogWrite).end <= from) heapPop(heap);
    if (heap.length === 0) continue;
    const w = writes[heap[0] as number] as LogWrite;
    const last = out[out.length - 1];
    const dataOffset = from - w.start;
    if (
      last &&
      last.end === from &&
      (w.data ? last.data === w.data && last.dataOffset + (last.end - last.start) === dataOffset : !last.data)
    ) {
      out[out.length - 1] = { ...last, end: to };
    } else {
      out.push(
        w.data ? { start: from, end: to, data: w.data, dataOffset } : { start: from, end: to, dataOffset: 0 },
      );
    }
  }
  return out;
}

function heapPush(h: number[], v: number): void {
  h.push(v);
  for (let i = h.length - 1; i > 0;) {
    const p = (i - 1) >> 1;
    if ((h[p] as number) >= v) break;
    h[i] = h[p] as number;
    h[p] = v;
    i = p;
  }
}

function heapPop(h: number[]): void {
  const last = h.pop() as number;
  if (h.length === 0) return;
  h[0] = last;
  for (let i = 0; ;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let m = i;
    if (l < h.length && (h[l] as number) > (h[m] as number)) m = l;
    if (r < h.length && (h[r] as number) > (h[m] as number)) m = r;
    if (m === i) break;
    [h[i], h[m]] = [h[m] as number, h[i] as number];
    i = m;
  }
}

/**
 * The file as replayed: `inner`'s bytes, zeros from its end up to `size` (the log may
 * extend the file, spec 2.3.3), and the segments on top.
 */
export class OverlaySource implements ByteSource {
  readonly name: string;
  readonly size: number;
  readonly #inner: ByteSource;
  readonly #segments: readonly Segment[];

  constructor(inner: ByteSource, segments: readonly Segment[], size: number) {
    this.#inner = inner;
    this.#segments = segments;
    this.size = Math.max(size, inner.size);
    this.name = inner.name;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRead(this.name, this.size, offset, length);
    const end = offset + length;
    const first = this.#firstAfter(offset);
    const touched = first < this.#segments.length && (this.#segments[first] as Segment).start < end;
    const innerSize = this.#inner.size;
    if (!touched && end <= innerSize) return this.#inner.read(offset, length);
    const out = Buffer.alloc(length);
    if (offset < innerSize) (await this.#inner.read(offset, Math.min(end, innerSize) - offset)).copy(out);
    for (let i = first; i < this.#segments.length; i++) {
      const s = this.#segments[i] as Segment;
      if (s.start >= end) break;
      const a = Math.max(s.start, offset);
      const b = Math.min(s.end, end);
      if (s.data) s.data.copy(out, a - offset, s.dataOffset + a - s.start, s.dataOffset + b - s.start);
      else out.fill(0, a - offset, b - offset);
    }
    return out;
  }

  /** Index of the first segment ending after `offset` (binary search). */
  #firstAfter(offset: number): number {
    let lo = 0;
    let hi = this.#segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#segments[mid] as Segment).end <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
