/** `ferry image info FILE [--json]`: format, subformat, sizes, chain, warnings. */
import { isStored, type Disk } from '../../disk/index.js';
import { COMMON_IMAGE_OPTIONS, needPositionals, parse } from '../args.js';
import { formatBytes, writeJson } from '../output.js';
import { withDisk } from './image-open.js';

const USAGE = 'ferry image info FILE [--json] [-f FORMAT] [--no-backing] [--allow-external-references]';

export interface ImageInfo {
  file: string;
  format: string;
  subformat: string;
  virtualSize: number;
  /** Virtual bytes backed by stored data anywhere in the chain. */
  allocatedBytes: number;
  /** Bytes the files of the chain occupy. */
  fileSize: number;
  clusterSize: number;
  chain: Array<{
    file: string;
    format: string;
    subformat: string;
    virtualSize: number;
    fileSize: number;
    clusterSize: number;
    parent?: string;
    id?: string;
    files: string[];
    details: Record<string, string | number | boolean>;
  }>;
  warnings: string[];
}

export async function describe(disk: Disk): Promise<ImageInfo> {
  let allocated = 0;
  for await (const e of disk.map()) if (isStored(e.kind)) allocated += e.length;
  const top = disk.layers[0];
  if (!top) throw new Error('disk without layers');
  return {
    file: disk.names[0] ?? '',
    format: top.format,
    subformat: top.subformat,
    virtualSize: disk.virtualSize,
    allocatedBytes: allocated,
    fileSize: disk.layers.reduce((s, l) => s + l.fileSize, 0),
    clusterSize: top.clusterSize,
    chain: disk.layers.map((l, i) => ({
      file: disk.names[i] ?? '',
      format: l.format,
      subformat: l.subformat,
      virtualSize: l.virtualSize,
      fileSize: l.fileSize,
      clusterSize: l.clusterSize,
      ...(l.parent ? { parent: l.parent.name } : {}),
      ...(l.id !== undefined ? { id: l.id } : {}),
      files: [...l.files],
      details: { ...l.details },
    })),
    warnings: disk.layers.flatMap((l, i) => l.warnings.map((w) => `${disk.names[i] ?? ''}: ${w}`)),
  };
}

export async function imageInfo(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, COMMON_IMAGE_OPTIONS, USAGE);
  const [file] = needPositionals(positionals, 1, USAGE) as [string];
  const info = await withDisk(file, values, describe);
  if (values.json) {
    writeJson(info);
    return 0;
  }
  const lines = [
    `image: ${file}`,
    `format: ${info.format} (${info.subformat})`,
    `virtual size: ${formatBytes(info.virtualSize)} (${info.virtualSize} bytes)`,
    `allocated: ${formatBytes(info.allocatedBytes)} (${info.allocatedBytes} bytes)`,
    `file size: ${formatBytes(info.fileSize)} (${info.fileSize} bytes)`,
    `cluster size: ${info.clusterSize}`,
  ];
  if (info.chain.length > 1) {
    lines.push('chain:');
    info.chain.forEach((c, i) => lines.push(`  ${i}: ${c.file} (${c.format} ${c.subformat})`));
  } else if (info.chain[0]?.parent) {
    lines.push(`backing file: ${info.chain[0].parent} (not opened)`);
  }
  for (const [k, v] of Object.entries(info.chain[0]?.details ?? {})) lines.push(`${k}: ${String(v)}`);
  for (const w of info.warnings) lines.push(`warning: ${w}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
