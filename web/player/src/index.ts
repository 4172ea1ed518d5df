// Entry point of openivs-player.min.js: defines the global IVSPlayer with the
// module surface of the Amazon IVS web player (spec/03 §6), so a page that
// uses https://player.live-video.net/<v>/amazon-ivs-player.min.js works with
// only its script URL changed.

import Hls from 'hls.js/dist/hls.js';
import { ErrorType, LogLevel, MetadataEventType, MetadataID3Type, PlayerConfig, PlayerEventType, PlayerState } from './enums';
import { MediaPlayer, VERSION } from './player';

function supported(): boolean {
  if (typeof window === 'undefined') return false;
  if (Hls.isSupported()) return true;
  // Native HLS (iOS Safari) is a supported fallback at normal latency.
  const v = document.createElement('video');
  return v.canPlayType('application/vnd.apple.mpegurl') !== '';
}

export const isPlayerSupported = supported();

export function create(config?: PlayerConfig): MediaPlayer {
  if (!isPlayerSupported) throw new Error('IVSPlayer: this browser supports neither MSE nor native HLS');
  return new MediaPlayer(config);
}

export function getVersion(): string {
  return VERSION;
}

export { PlayerState, PlayerEventType, ErrorType, MetadataEventType, MetadataID3Type, LogLevel, MediaPlayer };
