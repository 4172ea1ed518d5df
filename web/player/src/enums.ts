// String values are those of the amazon-ivs-player enums (spec/03 §7–9), so
// page code written for the IVS player compares and listens to the same strings.

export const PlayerState = {
  IDLE: 'Idle',
  READY: 'Ready',
  BUFFERING: 'Buffering',
  PLAYING: 'Playing',
  ENDED: 'Ended',
} as const;
export type PlayerStateValue = (typeof PlayerState)[keyof typeof PlayerState];

export const PlayerEventType = {
  INITIALIZED: 'PlayerInitialized',
  QUALITY_CHANGED: 'PlayerQualityChanged',
  DURATION_CHANGED: 'PlayerDurationChanged',
  VOLUME_CHANGED: 'PlayerVolumeChanged',
  MUTED_CHANGED: 'PlayerMutedChanged',
  PLAYBACK_RATE_CHANGED: 'PlayerPlaybackRateChanged',
  REBUFFERING: 'PlayerRebuffering',
  AUDIO_BLOCKED: 'PlayerAudioBlocked',
  PLAYBACK_BLOCKED: 'PlayerPlaybackBlocked',
  ERROR: 'PlayerError',
  RECOVERABLE_ERROR: 'PlayerRecoverableError',
  ANALYTICS_EVENT: 'PlayerAnalyticsEvent',
  TIME_UPDATE: 'PlayerTimeUpdate',
  BUFFER_UPDATE: 'PlayerBufferUpdate',
  SEEK_COMPLETED: 'PlayerSeekCompleted',
  SESSION_DATA: 'PlayerSessionData',
  STATE_CHANGED: 'PlayerStateChanged',
  WORKER_ERROR: 'PlayerWorkerError',
  METADATA: 'PlayerMetadata',
  TEXT_CUE: 'PlayerTextCue',
  TEXT_METADATA_CUE: 'PlayerTextMetadataCue',
  AD_CUE: 'PlayerAdCue',
  STREAM_SOURCE_CUE: 'PlayerStreamSourceCue',
  NETWORK_UNAVAILABLE: 'PlayerNetworkUnavailable',
  SEGMENT_DISCONTINUITY: 'PlayerSegmentDiscontinuity',
  SEGMENT_METADATA: 'PlayerSegmentMetadata',
} as const;

export const ErrorType = {
  GENERIC: 'Error',
  NOT_SUPPORTED: 'ErrorNotSupported',
  NO_SOURCE: 'ErrorNoSource',
  INVALID_DATA: 'ErrorInvalidData',
  INVALID_STATE: 'ErrorInvalidState',
  INVALID_PARAMETER: 'ErrorInvalidParameter',
  TIMEOUT: 'ErrorTimeout',
  NETWORK: 'ErrorNetwork',
  NETWORK_IO: 'ErrorNetworkIO',
  AUTHORIZATION: 'ErrorAuthorization',
  NOT_AVAILABLE: 'ErrorNotAvailable',
} as const;
export type ErrorTypeValue = (typeof ErrorType)[keyof typeof ErrorType];

export const MetadataEventType = {
  ID3: 'MetaID3',
  CAPTION: 'MetaCaption',
} as const;

export const MetadataID3Type = {
  HTTP: 'metadata.live-video.net',
  INBAND: 'inband.metadata.live-video.net',
} as const;

export const LogLevel = {
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
} as const;
export type LogLevelValue = (typeof LogLevel)[keyof typeof LogLevel];

export interface Quality {
  name: string;
  group: string;
  codecs: string;
  bitrate: number;
  width: number;
  height: number;
  framerate: number;
  isDefault: boolean;
}

export interface PlayerError {
  type: ErrorTypeValue;
  code: number;
  source: string;
  message: string;
}

export interface TextMetadataCue {
  type: 'TextMetadataCue';
  startTime: number;
  endTime: number;
  text: string;
  description: string;
  owner: string;
}

export interface TextCue {
  type: 'TextCue';
  startTime: number;
  endTime: number;
  text: string;
  line: number;
  size: number;
  position: number;
}

export interface PlayerConfig {
  // Accepted for source compatibility with amazon-ivs-player; unused (no WASM here).
  wasmWorker?: string;
  wasmBinary?: string;
  logLevel?: LogLevelValue;
  serviceWorker?: { url: string; scope?: string };
}
