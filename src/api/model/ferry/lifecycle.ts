/**
 * The migration lifecycle of applications and waves (docs/launch.md, "Lifecycle"). Every
 * action takes an `appId`, or a `waveName` to act on each app of the wave (then `apps`
 * reports each app's outcome).
 */
import type { FerryArea } from './index.js';

const ERRORS = [
  'UnauthorizedOperationException',
  'InvalidParameterException',
  'MissingRequiredParameterException',
  'OperationNotPermittedException',
  'InternalError',
];
const TARGET = { appId: 'string', waveName: 'string' };

export const shapes: FerryArea['shapes'] = {
  FerryLifecycleTarget: { type: 'structure', members: TARGET },
  StartCutoverRequest: { type: 'structure', members: { ...TARGET, finalReplication: 'boolean' } },
  FerryWaveOutcome: {
    type: 'structure',
    members: { appId: 'string', state: 'string', errorCode: 'string', errorMessage: 'string' },
  },
  FerryWaveOutcomeList: { type: 'list', member: 'FerryWaveOutcome' },
  FerryLifecycleActionResponse: {
    type: 'structure',
    members: { state: 'string', apps: 'FerryWaveOutcomeList' },
  },
  GetAppLifecycleRequest: { type: 'structure', members: { appId: 'string' }, required: ['appId'] },
  FerryLifecycleServer: {
    type: 'structure',
    members: {
      serverId: 'string',
      latestImageId: 'string',
      instanceId: 'string',
      instanceState: 'string',
      // The instance holds all its data (the image was streamed in); it needs no store.
      standalone: 'boolean',
    },
  },
  FerryLifecycleServerList: { type: 'list', member: 'FerryLifecycleServer' },
  FerryCutoverTimings: {
    type: 'structure',
    members: {
      startedAt: 'timestamp',
      finalReplicationMs: 'integer',
      launchMs: 'integer',
      totalMs: 'integer',
    },
  },
  FerryStreaming: {
    type: 'structure',
    members: { percentDone: 'integer', done: 'boolean', error: 'string' },
  },
  FerryLifecycleEntry: {
    type: 'structure',
    members: { state: 'string', message: 'string', time: 'timestamp' },
  },
  FerryLifecycleHistory: { type: 'list', member: 'FerryLifecycleEntry' },
  GetAppLifecycleResponse: {
    type: 'structure',
    members: {
      appId: 'string',
      state: 'string',
      statusMessage: 'string',
      actionInProgress: 'boolean',
      waveName: 'string',
      updatedAt: 'timestamp',
      launchPurpose: 'string',
      servers: 'FerryLifecycleServerList',
      cutover: 'FerryCutoverTimings',
      streaming: 'FerryStreaming',
      history: 'FerryLifecycleHistory',
    },
  },
  FerryAppIdList: { type: 'list', member: 'string' },
  AssignWaveRequest: {
    type: 'structure',
    members: { waveName: 'FerryWaveName', appIds: 'FerryAppIdList' },
    required: ['waveName', 'appIds'],
  },
  // Empty takes the apps out of their wave.
  FerryWaveName: { type: 'string', min: 0, max: 64 },
  AssignWaveResponse: { type: 'structure', members: {} },
  ListWavesRequest: { type: 'structure', members: {} },
  FerryWaveApp: { type: 'structure', members: { appId: 'string', name: 'string', state: 'string' } },
  FerryWaveAppList: { type: 'list', member: 'FerryWaveApp' },
  FerryWave: { type: 'structure', members: { waveName: 'string', apps: 'FerryWaveAppList' } },
  FerryWaveList: { type: 'list', member: 'FerryWave' },
  ListWavesResponse: { type: 'structure', members: { waves: 'FerryWaveList' } },
};

const action = ['FerryLifecycleTarget', 'FerryLifecycleActionResponse', ERRORS] as const;

export const operations: FerryArea['operations'] = {
  GetAppLifecycle: ['GetAppLifecycleRequest', 'GetAppLifecycleResponse', ERRORS],
  StartTest: action,
  MarkReadyForCutover: action,
  RevertToReadyForTesting: action,
  StartCutover: ['StartCutoverRequest', 'FerryLifecycleActionResponse', ERRORS],
  RevertCutover: action,
  FinalizeCutover: action,
  ArchiveApp: action,
  UnarchiveApp: action,
  AssignWave: ['AssignWaveRequest', 'AssignWaveResponse', ERRORS],
  ListWaves: ['ListWavesRequest', 'ListWavesResponse', ERRORS],
};
