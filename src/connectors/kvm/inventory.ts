/**
 * What a running QEMU says about itself over QMP, as the connector's inventory: identity,
 * CPUs, memory, firmware, NICs and the disks in the order every other operation numbers
 * them (query-block order, guest-visible non-removable drives only).
 */
import { basename } from 'node:path';
import type { InventoryDisk, InventoryNic, InventoryServer } from '../types.js';
import { MAX_DISKS_PER_VM } from './names.js';
import {
  queryBlock,
  queryCpusFast,
  queryMemorySizeSummary,
  queryName,
  queryNamedBlockNodes,
  queryStatus,
  queryUuid,
  type QmpBlockDeviceInfo,
  type QmpBlockInfo,
  type QmpClient,
  type QmpDirtyBitmapInfo,
} from './qmp/index.js';
import { isRefused } from './session.js';

const MiB = 1024 * 1024;
const NO_UUID = '00000000-0000-0000-0000-000000000000';

/** One disk of a VM as the snapshot code needs it. */
export interface VmDisk {
  /** 0-based, query-block order among the disks (what openDisk's `index` means). */
  readonly index: number;
  /** The drive's name: its `-drive id`, else the id of the device it is attached to. */
  readonly name: string;
  /** The node Ferry attaches bitmaps and the fleecing overlay to (the drive's top node). */
  readonly node: string;
  /** QEMU block driver of that node: qcow2, raw, … */
  readonly format: string;
  readonly virtualSize: number;
  /** Bytes the image file occupies, when QEMU knows. */
  readonly allocation?: number;
  /** Bitmaps on the node can be stored in the image and survive a VM restart (qcow2 v3). */
  readonly persistentBitmaps: boolean;
  readonly readOnly: boolean;
  readonly bitmaps: readonly QmpDirtyBitmapInfo[];
}

/** The socket's base name without `.qmp`: the VM's id when it has no UUID, its name when it has none. */
export function socketBaseName(socketPath: string): string {
  return basename(socketPath).replace(/\.qmp$/, '');
}

/** The stable id of a VM: its UUID (`-uuid`, which libvirt always sets), else the socket's base name. */
export function vmIdOf(uuid: string, socketPath: string): string {
  return uuid === NO_UUID ? socketBaseName(socketPath) : uuid.toLowerCase();
}

export async function readVmId(q: QmpClient, socketPath: string): Promise<string> {
  return vmIdOf(await queryUuid(q), socketPath);
}

/**
 * The id a drive is known by: `-drive id=` (query-block `device`), else — with -blockdev,
 * where `device` is empty — the id of the guest device from its QOM path
 * ("/machine/peripheral/virtio-disk0/virtio-backend" → "virtio-disk0").
 */
export function driveName(b: QmpBlockInfo): string {
  if (b.device) return b.device;
  const parts = (b.qdev ?? '').split('/').filter((p) => p && !['machine', 'virtio-backend'].includes(p));
  return parts[parts.length - 1] ?? 'disk';
}

/**
 * Firmware flash (`-drive if=pflash`, or `-machine pflash0=…` with -blockdev): attached to
 * the board's /machine/system.flashN device. It is firmware and its variable store, not a disk.
 */
export function isFirmwareFlash(b: QmpBlockInfo): boolean {
  return /^pflash\d+$/.test(b.device) || /\/machine\/system\.flash\d+/.test(b.qdev ?? '');
}

/**
 * The guest's disks: drives attached to a guest device (`qdev` present; a bare
 * `-drive if=none` the guest cannot see is skipped), with media inserted, not removable
 * (CD-ROM and floppy drives are), and not firmware flash. query-block order is the order
 * QEMU created the drives in, which is stable for a given command line.
 */
export function selectDisks(blocks: readonly QmpBlockInfo[]): VmDisk[] {
  const out: VmDisk[] = [];
  for (const b of blocks) {
    const ins = b.inserted;
    if (!ins || b.removable || !b.qdev || isFirmwareFlash(b)) continue;
    if (out.length >= MAX_DISKS_PER_VM) break;
    out.push(toDisk(out.length, b, ins));
  }
  return out;
}

function toDisk(index: number, b: QmpBlockInfo, ins: QmpBlockDeviceInfo): VmDisk {
  const specific = (ins.image as { 'format-specific'?: { type?: string; data?: { compat?: string } } })[
    'format-specific'
  ];
  // Persistent bitmaps are a qcow2 v3 (compat 1.1) feature and need a writable image.
  const persistent = ins.drv === 'qcow2' && specific?.data?.compat !== '0.10' && !ins.ro;
  return {
    index,
    name: driveName(b),
    // -drive without node-name gets an automatic "#blockNNN" name, usable in QMP while the
    // VM runs; the drive id works for every command used here as well.
    node: ins['node-name'] ?? b.device,
    format: ins.drv,
    virtualSize: ins.image['virtual-size'],
    ...(typeof ins.image['actual-size'] === 'number' ? { allocation: ins.image['actual-size'] } : {}),
    persistentBitmaps: persistent,
    readOnly: ins.ro,
    bitmaps: ins['dirty-bitmaps'] ?? [],
  };
}

export async function listDisks(q: QmpClient): Promise<VmDisk[]> {
  return selectDisks(await queryBlock(q));
}

/** Files whose names say they are UEFI firmware images (distribution package names). */
const UEFI_FILE = /OVMF|AAVMF|edk2|QEMU_EFI|QEMU_VARS/i;

/**
 * The firmware, by a heuristic (QMP has no "firmware" query): UEFI ('efi') when the board
 * has flash drives attached (x86 boards boot SeaBIOS from ROM and use flash only for
 * UEFI) or any block node's file is named like an EDK2/OVMF image; otherwise 'bios'.
 * The values match the folder source's (VMX `firmware`).
 */
export function firmwareOf(
  blocks: readonly QmpBlockInfo[],
  nodes: readonly QmpBlockDeviceInfo[],
): 'efi' | 'bios' {
  if (blocks.some((b) => isFirmwareFlash(b) && b.inserted)) return 'efi';
  if (nodes.some((n) => UEFI_FILE.test(basename(n.file)))) return 'efi';
  return 'bios';
}

/** NIC MACs from query-rx-filter (virtio-net reports it; other NIC models are skipped). */
async function nicsOf(q: QmpClient): Promise<InventoryNic[]> {
  try {
    const list = await q.execute('query-rx-filter');
    if (!Array.isArray(list)) return [];
    return list
      .map((n) => (n as { 'main-mac'?: unknown })['main-mac'])
      .filter((mac): mac is string => typeof mac === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac))
      .slice(0, 64)
      .map((macAddress) => ({ macAddress }));
  } catch (err) {
    if (isRefused(err)) return [];
    throw err;
  }
}

/** One inventory entry for the VM behind `socketPath`. */
export async function describeVm(q: QmpClient, socketPath: string): Promise<InventoryServer> {
  const vmId = await readVmId(q, socketPath);
  const name = (await queryName(q)) ?? socketBaseName(socketPath);
  const blocks = await queryBlock(q);
  const nodes = await queryNamedBlockNodes(q);
  const cpus = (await queryCpusFast(q)).length;
  const mem = await queryMemorySizeSummary(q);
  const status = await queryStatus(q);
  const disks = selectDisks(blocks);
  const warnings: string[] = [];
  if (!status.running) warnings.push(`QEMU reports the VM as ${status.status} (not running)`);
  for (const d of disks) {
    if (!d.persistentBitmaps) {
      warnings.push(
        `disk ${d.name} (${d.format}) cannot keep change tracking across a VM restart: the first run after one reads it in full`,
      );
    }
  }
  if (disks.length === 0) warnings.push('QEMU shows no guest disk (no non-removable drive with media)');
  const facts = {
    disks: disks.map((d): InventoryDisk => ({
      name: d.name,
      format: d.format,
      subformat: '',
      virtualSize: d.virtualSize,
      fileSize: d.allocation ?? 0,
      files: [],
    })),
    cpus,
    memoryMiB: Math.round((mem['base-memory'] + (mem['plugged-memory'] ?? 0)) / MiB),
    nics: await nicsOf(q),
    firmware: firmwareOf(blocks, nodes),
    warnings,
  };
  return { vmId, vmName: name, vmPath: socketPath, facts };
}
