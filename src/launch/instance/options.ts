/**
 * What a caller may ask of an instance, and its validation. Everything here is checked
 * before anything is created on the host, so a refused launch leaves nothing behind.
 */
import type { SeedContent } from './seed.js';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { Disk } from '../../disk/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import { instanceType, type InstanceType } from '../instance-types.js';
import type { OvmfPaths } from './host.js';

export const BUSES = ['virtio', 'ide', 'sata', 'scsi'] as const;
export type DiskBus = (typeof BUSES)[number];

/** NIC models QEMU emulates that common guests have drivers for; `none` = no network. */
export const NIC_MODELS = ['virtio-net-pci', 'e1000', 'rtl8139', 'none'] as const;
export type NicModel = (typeof NIC_MODELS)[number];

export type Firmware = 'bios' | 'uefi';

export interface LaunchOptions {
  /**
   * Directory of the instance: overlays, sockets, console log, pid file. Created (0700)
   * when missing; refused when it already holds an instance. Its path must leave room
   * for the socket names (unix socket paths are limited to 107 bytes).
   */
  readonly dir: string;
  /** Instance name (QEMU -name): 1–64 of [A-Za-z0-9._-], starting with a letter or digit. */
  readonly name: string;
  /**
   * The disk(s) to boot, first = boot disk. The instance takes ownership: they are closed
   * by terminate(), or before a failed launch rejects.
   */
  readonly disk: Disk | readonly Disk[];
  /** An instance type name (t3.micro …), custom:<vCPUs>x<MiB>, or a resolved type. */
  readonly type: string | InstanceType;
  /** Disk controller; default virtio (virtio-blk). */
  readonly bus?: DiskBus;
  /** NIC model on QEMU user-mode networking; default virtio-net-pci. */
  readonly nic?: NicModel;
  /** Unicast MAC address (aa:bb:cc:dd:ee:ff); default 52:54:00 + 3 random bytes. */
  readonly mac?: string;
  /**
   * `user` (default: QEMU's user-mode NAT, no host setup) or `tap:IFNAME`, an existing tap
   * device the host attached to a bridge (`ip tuntap add IFNAME mode tap; ip link set
   * IFNAME master br0 up`): the instance is then on that network, reachable by its own IP.
   * QEMU runs sandboxed without spawn, so it cannot run bridge helpers itself.
   */
  readonly network?: string;
  /**
   * Guest TCP ports reachable on the host's loopback (user network only): each maps
   * 127.0.0.1:hostPort to the guest's guestPort (QEMU hostfwd). For probes and operators.
   */
  readonly forwards?: readonly PortForward[];
  /** A cloud-init NoCloud seed ISO (label "cidata"), attached as a read-only CD-ROM. */
  readonly seedIso?: string;
  /** Or the seed's content: built into DIR/seed.iso (seed.ts) and removed with the instance. */
  readonly seed?: SeedContent;
  /** Default bios (SeaBIOS). uefi needs OVMF on the host. */
  readonly firmware?: Firmware;
  /** OVMF files when not in a standard location. */
  readonly ovmf?: OvmfPaths;
  /** Make a guest reboot stop QEMU instead (default false). */
  readonly noReboot?: boolean;
  /** Instance id; default `i-` + 17 random hex digits (EC2's shape). */
  readonly id?: string;
  /** Programs, when not on PATH. */
  readonly qemuBinary?: string;
  readonly qemuImgBinary?: string;
  /** How long QEMU may take to come up (QMP answering); default 30 s. */
  readonly startTimeoutMs?: number;
}

/** A validated request (no host state consulted yet). */
export interface LaunchRequest {
  readonly id: string;
  readonly dir: string;
  readonly name: string;
  readonly disks: readonly Disk[];
  readonly type: InstanceType;
  readonly bus: DiskBus;
  readonly nic: NicModel;
  readonly mac: string;
  readonly network: Network;
  readonly forwards: readonly PortForward[];
  readonly seedIso: string | undefined;
  readonly firmware: Firmware;
  readonly noReboot: boolean;
  readonly startTimeoutMs: number;
}

/** Disks each bus takes on the `pc` machine (ide: two channels of two; sata: one AHCI's six ports). */
export const MAX_DISKS: Readonly<Record<DiskBus, number>> = { virtio: 16, scsi: 16, sata: 6, ide: 4 };
/** Longest socket file name the instance directory holds ("/nbd.sock", "/qmp.sock"). */
const SOCKET_SUFFIX_BYTES = '/nbd.sock'.length;
const MAX_SOCKET_PATH_BYTES = 107;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ID = /^i-[0-9a-f]{8,32}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** Linux interface names: at most 15 bytes (IFNAMSIZ − 1), no '/', ':', spaces or commas. */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export interface PortForward {
  readonly hostPort: number;
  readonly guestPort: number;
}
/** Forwards per instance: probes need a few; QEMU takes one option each. */
export const MAX_FORWARDS = 16;

export type Network = { readonly kind: 'user' } | { readonly kind: 'tap'; readonly ifname: string };

/** `user` or `tap:IFNAME` → a Network, or a coded refusal. */
export function parseNetwork(text: string | undefined): Network {
  if (text === undefined || text === 'user') return { kind: 'user' };
  const m = /^tap:(.*)$/.exec(text);
  if (m && IFNAME.test(m[1]!)) return { kind: 'tap', ifname: m[1]! };
  throw new InvalidArgumentError(
    `network ${JSON.stringify(String(text).slice(0, 40))} is not "user" or "tap:IFNAME" (IFNAME: 1–15 of [A-Za-z0-9_.-])`,
    { member: 'network' },
  );
}
/** Start timeout bounds: QEMU starts in well under a second; minutes mean it hangs. */
const MAX_START_TIMEOUT_MS = 10 * 60_000;

const bad = (message: string, details: Record<string, string | number> = {}): never => {
  throw new InvalidArgumentError(message, details);
};

export function newInstanceId(): string {
  return `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

function defaultMac(): string {
  // 52:54:00 is QEMU's own prefix (locally administered, unicast).
  return ['52', '54', '00', ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

export function validateLaunch(o: LaunchOptions): LaunchRequest {
  if (typeof o.dir !== 'string' || o.dir === '') bad('an instance directory is required');
  const dir = resolve(o.dir);
  if (Buffer.byteLength(dir) + SOCKET_SUFFIX_BYTES > MAX_SOCKET_PATH_BYTES) {
    bad(
      `instance directory path is too long for unix sockets (≤ ${MAX_SOCKET_PATH_BYTES - SOCKET_SUFFIX_BYTES} bytes)`,
      {
        dir,
      },
    );
  }
  if (/[\0\n\r]/.test(dir)) bad('instance directory path has control characters');
  if (!NAME.test(o.name ?? '')) {
    bad('instance name must be 1–64 of [A-Za-z0-9._-], starting with a letter or digit', {
      name: String(o.name).slice(0, 80),
    });
  }
  const id = o.id ?? newInstanceId();
  if (!ID.test(id)) bad('instance id must look like i-0123456789abcdef0', { id: id.slice(0, 40) });
  const disks = Array.isArray(o.disk) ? (o.disk as readonly Disk[]) : [o.disk as Disk];
  const bus = o.bus ?? 'virtio';
  if (!BUSES.includes(bus)) bad(`unknown disk bus "${String(bus)}" (${BUSES.join(', ')})`);
  const maxDisks = MAX_DISKS[bus] - (bus === 'ide' && o.seedIso ? 1 : 0);
  if (
    disks.length === 0 ||
    disks.length > maxDisks ||
    disks.some((d) => !d || typeof d.read !== 'function')
  ) {
    bad(`an instance on the ${bus} bus takes 1 to ${maxDisks} disks`, { disks: disks.length });
  }
  const nic = o.nic ?? 'virtio-net-pci';
  if (!NIC_MODELS.includes(nic)) bad(`unknown NIC model "${String(nic)}" (${NIC_MODELS.join(', ')})`);
  const mac = (o.mac ?? defaultMac()).toLowerCase();
  // The group bit (least significant bit of the first octet) makes an address multicast.
  if (!MAC.test(mac) || parseInt(mac.slice(0, 2), 16) & 1)
    bad('MAC address must be unicast aa:bb:cc:dd:ee:ff', { mac });
  const firmware = o.firmware ?? 'bios';
  if (firmware !== 'bios' && firmware !== 'uefi') bad(`unknown firmware "${String(firmware)}" (bios, uefi)`);
  if (o.seedIso !== undefined && (typeof o.seedIso !== 'string' || o.seedIso === ''))
    bad('seedIso must be a path');
  if (o.seedIso !== undefined && o.seed !== undefined) bad('give seedIso or seed, not both');
  const startTimeoutMs = o.startTimeoutMs ?? 30_000;
  if (!Number.isSafeInteger(startTimeoutMs) || startTimeoutMs < 1 || startTimeoutMs > MAX_START_TIMEOUT_MS) {
    bad(`startTimeoutMs must be 1–${MAX_START_TIMEOUT_MS}`, { startTimeoutMs });
  }
  return {
    id,
    dir,
    name: o.name,
    disks,
    type: typeof o.type === 'string' ? instanceType(o.type) : instanceType(o.type.name),
    bus,
    nic,
    mac,
    network: parseNetwork(o.network),
    forwards: checkForwards(o.forwards ?? [], parseNetwork(o.network)),
    seedIso: o.seedIso === undefined ? undefined : resolve(o.seedIso),
    firmware,
    noReboot: o.noReboot ?? false,
    startTimeoutMs,
  };
}

function checkForwards(forwards: readonly PortForward[], network: Network): readonly PortForward[] {
  if (forwards.length === 0) return [];
  if (network.kind !== 'user')
    bad('port forwards are for the user network (a tap network reaches the guest directly)');
  if (forwards.length > MAX_FORWARDS) bad(`at most ${MAX_FORWARDS} port forwards`);
  const port = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
  for (const f of forwards) {
    if (!port(f.hostPort) || !port(f.guestPort)) {
      bad('port forwards map host ports 1–65535 to guest ports 1–65535', {
        hostPort: String(f.hostPort),
        guestPort: String(f.guestPort),
      });
    }
  }
  return forwards.map((f) => ({ hostPort: f.hostPort, guestPort: f.guestPort }));
}
