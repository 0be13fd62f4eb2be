/** Per-server boot settings beyond SMS's launch configuration (src/control/launch-options.ts). */
import type { FerryArea } from './index.js';

const ERRORS = [
  'UnauthorizedOperationException',
  'InvalidParameterException',
  'MissingRequiredParameterException',
  'InternalError',
];
const OPTIONS = {
  bus: 'FerryDiskBus',
  nicModel: 'FerryNicModel',
  firmware: 'FerryFirmware',
  network: 'string',
  preserveMac: 'boolean',
  macAddress: 'string',
  imageId: 'FerryImageId',
  host: 'FerryLaunchPlacement',
};

export const shapes: FerryArea['shapes'] = {
  FerryDiskBus: { type: 'string', enum: ['virtio', 'ide', 'sata', 'scsi'] },
  FerryNicModel: { type: 'string', enum: ['virtio-net-pci', 'e1000', 'rtl8139', 'none'] },
  FerryFirmware: { type: 'string', enum: ['bios', 'uefi'] },
  FerryImageId: { type: 'string', pattern: '^ami-[0-9a-f]{17}$' },
  FerryLaunchPlacement: { type: 'string', pattern: '^(local|auto|h-[0-9a-f]{17})$' },
  PutServerLaunchOptionsRequest: {
    type: 'structure',
    members: { appId: 'string', serverId: 'string', ...OPTIONS },
    required: ['appId', 'serverId'],
  },
  PutServerLaunchOptionsResponse: { type: 'structure', members: {} },
  GetServerLaunchOptionsRequest: { type: 'structure', members: { appId: 'string' }, required: ['appId'] },
  FerryResolvedLaunchOptions: {
    type: 'structure',
    members: {
      bus: 'string',
      nic: 'string',
      firmware: 'string',
      network: 'string',
      mac: 'string',
      host: 'string',
    },
  },
  FerryServerLaunchOptions: {
    type: 'structure',
    members: { serverId: 'string', ...OPTIONS, resolved: 'FerryResolvedLaunchOptions' },
  },
  FerryServerLaunchOptionsList: { type: 'list', member: 'FerryServerLaunchOptions' },
  GetServerLaunchOptionsResponse: { type: 'structure', members: { servers: 'FerryServerLaunchOptionsList' } },
};

export const operations: FerryArea['operations'] = {
  PutServerLaunchOptions: ['PutServerLaunchOptionsRequest', 'PutServerLaunchOptionsResponse', ERRORS],
  GetServerLaunchOptions: ['GetServerLaunchOptionsRequest', 'GetServerLaunchOptionsResponse', ERRORS],
};
