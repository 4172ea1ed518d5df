// MediaPlayer: the IVS web player API (spec/03 §6) on top of hls.js.
// Setters act immediately (hls.js is in-process, no worker round trip);
// state is reported through events exactly as the IVS player reports it.

// The UMD build carries hls.js's transmuxer as an inline blob: worker; the ESM
// build would transmux on the main thread.
import Hls from 'hls.js/dist/hls.js';
import type { AttrList, ErrorData, HlsConfig, Level, LevelUpdatedData } from 'hls.js/dist/hls.js';
import { parseID3, type ID3Frame } from './id3';

const { ErrorDetails, ErrorTypes, Events } = Hls;
import {
  ErrorType,
  ErrorTypeValue,
  LogLevel,
  LogLevelValue,
  PlayerConfig,
  PlayerError,
  PlayerEventType,
  PlayerState,
  PlayerStateValue,
  Quality,
  TextMetadataCue,
} from './enums';

// Catch-up limits: never spend the buffer below MIN_CATCHUP_BUFFER seconds
// (about one part plus a frame) and never play faster than MAX_CATCHUP_RATE.
const MIN_CATCHUP_BUFFER = 0.3;
const MAX_CATCHUP_RATE = 1.25;

export const VERSION = '1.44.0-openivs.0';

type Listener = (payload?: unknown) => void;

// hls.js settings for sub-second glass-to-glass on LL-HLS. Target latency
// comes from the server's PART-HOLD-BACK (or HOLD-BACK on plain HLS) so that
// one player works for both; playback is sped up slightly to catch up after
// a stall (syncToLive).
// hls.js (1.7) resets its CEA-608 parsers whenever the fragment it starts
// loading is not "sn + 1" of the last, which is true of every LL-HLS part
// after a segment's first: a caption whose bytes span two parts, or whose
// cue ends in a later part, is lost. This timeline controller treats the
// next part of the same segment, and the first part (or the whole) of the
// next segment, as contiguous, and leaves every other case to hls.js.
const TimelineBase = Hls.DefaultConfig.timelineController as unknown as new (hls: Hls) => {
  onFragLoading(event: string, data: { frag: FragLike; part?: { index: number } | null }): void;
};
type FragLike = { type: string; sn: number | 'initSegment'; cc: number };
class PartAwareTimelineController extends TimelineBase {
  onFragLoading(event: string, data: { frag: FragLike; part?: { index: number } | null }): void {
    const self = this as unknown as { lastSn: number; lastPartIndex: number; lastCc: number };
    const { frag } = data;
    const part = data.part?.index ?? -1;
    if (frag.type === 'main' && typeof frag.sn === 'number' && frag.cc === self.lastCc) {
      const nextPart = frag.sn === self.lastSn && part === self.lastPartIndex + 1;
      const nextSegment = frag.sn === self.lastSn + 1 && part <= 0;
      if (nextPart || nextSegment) {
        self.lastSn = frag.sn;
        self.lastPartIndex = part;
        return;
      }
    }
    super.onFragLoading(event, data);
  }
}

function hlsConfig(lowLatency: boolean, initialBuffer: number): Partial<HlsConfig> {
  return {
    lowLatencyMode: lowLatency,
    timelineController: PartAwareTimelineController as unknown as HlsConfig['timelineController'],
    enableWorker: true, // transmuxer runs in a blob: worker (CSP worker-src blob:)
    backBufferLength: 30,
    maxBufferLength: 10,
    // The player runs its own catch-up (syncToLive): hls.js only speeds up
    // with more than 1 s buffered, which never happens below 1 s of latency.
    maxLiveSyncPlaybackRate: 1,
    liveSyncOnStallIncrease: 0.25,
    highBufferWatchdogPeriod: 1,
    nudgeMaxRetry: 5,
    startFragPrefetch: true,
    testBandwidth: false,
    abrEwmaDefaultEstimate: 2_000_000,
    maxStarvationDelay: initialBuffer,
    maxLoadingDelay: initialBuffer,
    progressive: false,
    // Timed metadata is scheduled by the player itself (metadata.ts):
    // hls.js's cue track loses the first cues it is given in Chrome.
    enableID3MetadataCues: false,
    enableEmsgMetadataCues: false,
    manifestLoadPolicy: {
      default: {
        maxTimeToFirstByteMs: 10_000,
        maxLoadTimeMs: 20_000,
        timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
        // 403/404/429 on the multivariant playlist are final (spec/03 §9).
        errorRetry: { maxNumRetry: 1, retryDelayMs: 500, maxRetryDelayMs: 2000, shouldRetry: (_c, _n, _t, resp) => !resp || ![403, 404, 429].includes(resp.code ?? 0) },
      },
    },
  };
}

function sameFrames(a: ID3Frame[], b: ID3Frame[]): boolean {
  return a.length === b.length && a.every((f, i) => f.key === b[i].key && f.info === b[i].info && (typeof f.data !== 'string' || f.data === b[i].data));
}

export class MediaPlayer {
  private video: HTMLVideoElement;
  private ownsVideo = false;
  private hls: Hls | null = null;
  private url: string | null = null;
  private state: PlayerStateValue = PlayerState.IDLE;
  private listeners = new Map<string, Set<Listener>>();
  private deleted = false;
  private playIntent = false;
  private autoplay = false;
  private lowLatencyEnabled = true;
  private rebufferToLive = false;
  private autoQuality = true;
  private initialBuffer = 1;
  // qualities are indexed like hls.js's levels (ascending bitrate);
  // listed is the same qualities in the multivariant playlist's order,
  // which is what getQualities() returns, as the IVS player does.
  private qualities: Quality[] = [];
  private listed: Quality[] = [];
  private manifestOrder: string[] = [];
  private quality: Quality | null = null;
  private isLive = false;
  private serverLowLatency = false;
  private endList = false;
  private sessionId: string | undefined;
  private logLevel: LogLevelValue = LogLevel.ERROR;
  private recoveries = 0;
  private seeking = false;
  private endWatch: number | undefined;
  private credentials: RequestCredentials = 'same-origin';
  private autoMaxBitrate = Infinity;
  private videoHandlers: Array<[string, EventListener]> = [];

  constructor(config: PlayerConfig = {}) {
    if (config.logLevel) this.logLevel = config.logLevel;
    this.video = document.createElement('video');
    this.video.playsInline = true;
    this.ownsVideo = true;
    this.bindVideo();
    // INITIALIZED is async in IVS (worker start); keep it async so listeners added right after create() see it.
    setTimeout(() => this.emit(PlayerEventType.INITIALIZED), 0);
  }

  // --- element and lifecycle ---

  attachHTMLVideoElement(el: HTMLVideoElement): void {
    if (this.deleted || el === this.video) return;
    this.unbindVideo();
    this.video = el;
    this.ownsVideo = false;
    el.playsInline = true;
    this.bindVideo();
    if (this.hls) this.hls.attachMedia(el);
  }

  getHTMLVideoElement(): HTMLVideoElement {
    return this.video;
  }

  delete(): void {
    if (this.deleted) return;
    this.teardown();
    this.unbindVideo();
    if (this.ownsVideo) this.video.removeAttribute('src');
    this.listeners.clear();
    this.deleted = true;
  }

  getVersion(): string {
    return VERSION;
  }

  // --- loading and transport ---

  load(path: string, _mediaType?: string): void {
    if (this.deleted) return;
    this.url = path;
    this.teardown();
    this.qualities = [];
    this.pendingMeta = [];
    this.firedMeta = [];
    this.listed = [];
    this.manifestOrder = [];
    this.quality = null;
    this.isLive = false;
    this.endList = false;
    this.serverLowLatency = false;
    this.wasLive = false;
    this.lastDuration = -1;
    this.recoveries = 0;
    this.sessionId = undefined;
    if (this.state !== PlayerState.IDLE) this.setState(PlayerState.IDLE);

    if (!Hls.isSupported()) {
      // Native HLS (iOS Safari): normal latency, no quality list (spec/03 §4, §12).
      this.video.src = path;
      return;
    }
    let hls: Hls;
    try {
      hls = new Hls({
        ...hlsConfig(this.lowLatencyEnabled, this.initialBuffer),
        xhrSetup: (xhr) => {
          xhr.withCredentials = this.credentials === 'include';
        },
      });
    } catch (err) {
      this.emit(PlayerEventType.ERROR, { type: ErrorType.NOT_SUPPORTED, code: 0, source: 'Player', message: String(err) } satisfies PlayerError);
      return;
    }
    this.hls = hls;
    hls.on(Events.MANIFEST_LOADED, (_e, data) => {
      this.manifestOrder = data.levels.map((l) => l.url);
    });
    hls.on(Events.MANIFEST_PARSED, (_e, data) => this.onManifest(data.levels, data.sessionData ?? undefined));
    hls.on(Events.LEVEL_UPDATED, (_e, data) => this.onLevelUpdated(data));
    hls.on(Events.LEVEL_SWITCHED, (_e, data) => {
      const q = this.qualities[data.level];
      if (q && q !== this.quality) {
        this.quality = q;
        this.emit(PlayerEventType.QUALITY_CHANGED, q);
      }
    });
    hls.on(Events.BUFFER_APPENDED, () => this.emit(PlayerEventType.BUFFER_UPDATE));
    hls.on(Events.FRAG_PARSING_METADATA, (_e, data) => this.onMetadataSamples(data.samples));
    hls.on(Events.ERROR, (_e, data) => this.onHlsError(data));
    hls.on(Events.FRAG_CHANGED, (_e, data) => {
      if (data.frag.tagList.some((t) => t[0] === 'DIS')) this.emit(PlayerEventType.SEGMENT_DISCONTINUITY);
    });
    hls.attachMedia(this.video);
    hls.loadSource(path);
  }

  play(): void {
    if (this.deleted) return;
    this.playIntent = true;
    if (!this.url || this.state === PlayerState.IDLE && this.qualities.length === 0 && this.hls) {
      // Not READY yet: play once the manifest is parsed.
      return;
    }
    this.startPlayback();
  }

  pause(): void {
    if (this.deleted) return;
    this.playIntent = false;
    this.video.pause();
  }

  isPaused(): boolean {
    return this.video.paused;
  }

  seekTo(time: number): void {
    if (this.deleted || !this.url) return;
    this.seeking = true;
    this.video.currentTime = time;
  }

  setAutoplay(enabled: boolean): void {
    this.autoplay = enabled;
  }

  isAutoplay(): boolean {
    return this.autoplay;
  }

  setPlaybackRate(rate: number): void {
    if (rate < 0.25 || rate > 2) return;
    if (this.isLive) return; // live: playback rate is owned by latency control
    this.video.playbackRate = rate;
  }

  getPlaybackRate(): number {
    return this.isLive ? 1 : this.video.playbackRate;
  }

  // --- audio ---

  setMuted(muted: boolean): void {
    this.video.muted = muted;
  }

  isMuted(): boolean {
    return this.video.muted;
  }

  setVolume(volume: number): void {
    this.video.volume = Math.min(1, Math.max(0, volume));
  }

  getVolume(): number {
    return this.video.volume;
  }

  // --- quality and ABR ---

  getQualities(): Quality[] {
    return this.listed.slice();
  }

  getQuality(): Quality {
    return this.quality ?? ({} as Quality);
  }

  setQuality(quality: Quality, adaptive = false): void {
    if (!this.hls || this.video.hasAttribute('controls')) return;
    const idx = this.qualities.findIndex((q) => q.name === quality.name);
    if (idx < 0) return;
    this.autoQuality = false;
    if (adaptive) this.hls.nextLevel = idx;
    else this.hls.currentLevel = idx;
    const q = this.qualities[idx];
    if (q !== this.quality) {
      this.quality = q;
      this.emit(PlayerEventType.QUALITY_CHANGED, q);
    }
  }

  setAutoQualityMode(enabled: boolean): void {
    this.autoQuality = enabled;
    if (this.hls && enabled) this.hls.nextLevel = -1;
  }

  isAutoQualityMode(): boolean {
    return this.autoQuality;
  }

  setAutoMaxQuality(quality: Quality): void {
    this.setAutoMaxBitrate(quality.bitrate);
  }

  setAutoMaxBitrate(bps: number): void {
    this.autoMaxBitrate = bps;
    this.applyAutoCap();
  }

  setAutoMaxVideoSize(width: number, height: number): void {
    if (!this.hls) return;
    const fit = this.qualities.filter((q) => q.width <= width && q.height <= height);
    if (fit.length) this.setAutoMaxBitrate(Math.max(...fit.map((q) => q.bitrate)));
  }

  // --- latency and buffer ---

  getLiveLatency(): number {
    if (!this.isLive || !this.hls) return 0;
    // Glass-to-glass when the server stamps EXT-X-PROGRAM-DATE-TIME (ingest wall clock).
    const date = this.hls.playingDate;
    if (date) return Math.max(0, (Date.now() - date.getTime()) / 1000);
    return this.hls.latency;
  }

  isLiveLowLatency(): boolean {
    return this.isLive && this.lowLatencyEnabled && this.serverLowLatency;
  }

  setLiveLowLatencyEnabled(enabled: boolean): void {
    if (enabled === this.lowLatencyEnabled) return;
    this.lowLatencyEnabled = enabled;
    // Documented: changing it during playback restarts the stream.
    if (this.url && this.hls) {
      const wasPlaying = !this.video.paused;
      this.load(this.url);
      if (wasPlaying) this.play();
    }
  }

  setInitialBufferDuration(seconds: number): void {
    if (seconds < 0.1 || seconds > 5) return;
    this.initialBuffer = seconds;
  }

  setRebufferToLive(enabled: boolean): void {
    this.rebufferToLive = enabled;
  }

  getBufferDuration(): number {
    const b = this.video.buffered;
    const t = this.video.currentTime;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= t + 0.1 && t <= b.end(i)) return Math.max(0, b.end(i) - t);
    }
    return 0;
  }

  getBuffered(): { start: number; end: number } {
    const b = this.video.buffered;
    if (!b.length) return { start: 0, end: 0 };
    return { start: b.start(0), end: b.end(b.length - 1) };
  }

  getPosition(): number {
    return this.video.currentTime;
  }

  getDuration(): number {
    if (this.isLive) return Infinity;
    return Number.isFinite(this.video.duration) ? this.video.duration : 0;
  }

  getState(): PlayerStateValue {
    return this.state;
  }

  // --- network and diagnostics ---

  setRequestCredentials(credentials: RequestCredentials): void {
    this.credentials = credentials;
  }

  getSessionId(): string | undefined {
    return this.sessionId;
  }

  setLogLevel(level: LogLevelValue): void {
    this.logLevel = level;
  }

  getDisplayWidth(): number {
    return this.video.clientWidth;
  }

  getDisplayHeight(): number {
    return this.video.clientHeight;
  }

  getVideoWidth(): number {
    return this.video.videoWidth;
  }

  getVideoHeight(): number {
    return this.video.videoHeight;
  }

  getVideoFrameRate(): number {
    return this.quality?.framerate ?? 0;
  }

  getVideoBitRate(): number {
    return this.quality?.bitrate ?? 0;
  }

  // --- events ---

  addEventListener(type: string, listener: Listener): void {
    if (this.deleted) return;
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.listeners.get(type)?.delete(listener);
  }

  // --- internals ---

  private emit(type: string, payload?: unknown): void {
    if (this.deleted) return;
    const set = this.listeners.get(type);
    if (!set) return;
    for (const fn of Array.from(set)) {
      try {
        fn(payload);
      } catch (err) {
        console.error('[IVSPlayer] listener for', type, 'threw', err);
      }
    }
  }

  private log(level: LogLevelValue, ...args: unknown[]): void {
    const order = [LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR];
    if (order.indexOf(level) < order.indexOf(this.logLevel)) return;
    (level === LogLevel.ERROR ? console.error : level === LogLevel.WARN ? console.warn : console.log)('[IVSPlayer]', ...args);
  }

  private setState(state: PlayerStateValue): void {
    if (state === this.state) return;
    this.state = state;
    this.log(LogLevel.DEBUG, 'state', state);
    // IVS delivers states both as their own event and through STATE_CHANGED.
    this.emit(state, undefined);
    this.emit(PlayerEventType.STATE_CHANGED, state);
    if (state === PlayerState.ENDED) this.stopEndWatch();
  }

  private teardown(): void {
    this.stopEndWatch();
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
  }

  private onManifest(levels: Level[], sessionData?: Record<string, AttrList>): void {
    const used = new Map<string, number>();
    this.qualities = levels.map((l, i) => {
      // The rendition's name is its video group (IVS: VIDEO="720p30").
      const group = l.attrs?.VIDEO ? String(l.attrs.VIDEO) : '';
      let name = group && !/^\d+$/.test(group) ? group
        : l.name && !/^\d+$/.test(l.name) ? l.name
        : l.height ? `${l.height}p${l.frameRate ? Math.round(l.frameRate) : ''}` : l.videoCodec ? `level${i}` : 'audio_only';
      const n = used.get(name) ?? 0;
      used.set(name, n + 1);
      if (n) name = `${name}_${n}`;
      return {
        name,
        group: String(l.attrs?.VIDEO ?? l.attrs?.AUDIO ?? name),
        codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(','),
        bitrate: l.bitrate,
        width: l.width || 0,
        height: l.height || 0,
        framerate: l.frameRate || 0,
        isDefault: i === 0,
      };
    });
    // The playlist's order; levels it does not list keep hls.js's, last.
    const rank = (i: number) => {
      const at = this.manifestOrder.indexOf(levels[i].uri);
      return at < 0 ? this.manifestOrder.length + levels.length - i : at;
    };
    this.listed = this.qualities.map((q, i) => ({ q, r: rank(i) })).sort((a, b) => a.r - b.r).map((x) => x.q);
    this.listed.forEach((q, i) => (q.isDefault = i === 0));
    if (sessionData) {
      const sid = sessionData['net.live-video.session-id'] ?? sessionData['com.openivs.session-id'];
      if (sid?.VALUE) this.sessionId = String(sid.VALUE);
      this.emit(PlayerEventType.SESSION_DATA, { sessionData });
    }
    this.applyAutoCap();
    this.setState(PlayerState.READY);
    if (this.playIntent || this.autoplay) this.startPlayback();
  }

  private onLevelUpdated(data: LevelUpdatedData): void {
    const d = data.details;
    if (d.live) this.wasLive = true;
    this.isLive = this.wasLive;
    this.serverLowLatency = d.partTarget > 0;
    if (d.live && this.hls) {
      // Target latency is the server's PART-HOLD-BACK (LL-HLS) or HOLD-BACK;
      // small drift is caught up by playing faster (maxLiveSyncPlaybackRate),
      // and beyond this the player jumps back to the live edge, as IVS does.
      const target = this.hls.targetLatency ?? 3 * d.targetduration;
      this.hls.config.liveMaxLatencyDuration = target + Math.max(1.5, d.targetduration);
    }
    if (!d.live && this.wasLive && !this.endList) {
      // The live playlist got EXT-X-ENDLIST: the stream ended.
      this.endList = true;
      this.startEndWatch();
    }
    const dur = d.live ? Infinity : d.totalduration;
    if (dur !== this.lastDuration) {
      this.lastDuration = dur;
      this.emit(PlayerEventType.DURATION_CHANGED, dur);
    }
  }

  private wasLive = false;
  private lastDuration = -1;

  // A live stream that gets EXT-X-ENDLIST must end in ENDED even when the
  // media element never fires 'ended' (e.g. a gap at the very end of the buffer).
  private startEndWatch(): void {
    if (this.endWatch !== undefined) return;
    this.endWatch = window.setInterval(() => {
      if (this.state === PlayerState.ENDED) return this.stopEndWatch();
      const b = this.video.buffered;
      if (!b.length) return;
      const end = b.end(b.length - 1);
      if (this.video.currentTime >= end - 0.25 && (this.video.readyState < 3 || this.video.ended)) {
        this.setState(PlayerState.ENDED);
      }
    }, 250);
  }

  private stopEndWatch(): void {
    if (this.endWatch !== undefined) {
      clearInterval(this.endWatch);
      this.endWatch = undefined;
    }
  }

  private applyAutoCap(): void {
    if (!this.hls || !Number.isFinite(this.autoMaxBitrate)) return;
    let cap = -1;
    this.qualities.forEach((q, i) => {
      if (q.bitrate <= this.autoMaxBitrate) cap = i;
    });
    this.hls.autoLevelCapping = cap;
  }

  // Low-latency catch-up, run on every timeupdate (~4 Hz): while behind the
  // target latency and with buffer to spend, play up to 25% faster (pitch is
  // preserved, so it goes unnoticed); otherwise play at normal speed. Beyond
  // liveMaxLatencyDuration hls.js jumps to the live edge instead.
  private syncToLive(): void {
    const hls = this.hls;
    const v = this.video;
    if (!hls || !this.isLive || !this.lowLatencyEnabled || !this.serverLowLatency || v.paused || this.seeking) return;
    const target = hls.targetLatency;
    const latency = hls.latency;
    if (target == null || !(latency > 0)) return;
    const behind = latency - target;
    let rate = 1;
    if (behind > 0.05 && this.getBufferDuration() > MIN_CATCHUP_BUFFER) {
      rate = Math.min(MAX_CATCHUP_RATE, Math.round((1 + behind) * 20) / 20);
    }
    if (v.playbackRate !== rate) v.playbackRate = rate;
  }

  private startPlayback(): void {
    if (this.state === PlayerState.READY || this.state === PlayerState.IDLE) {
      this.setState(PlayerState.BUFFERING);
    }
    const p = this.video.play();
    if (!p) return;
    p.catch((err: DOMException) => {
      if (err?.name !== 'NotAllowedError') return; // AbortError: superseded by load/pause
      if (!this.video.muted) {
        // Unmuted autoplay blocked: IVS mutes and continues, reporting AUDIO_BLOCKED.
        this.emit(PlayerEventType.AUDIO_BLOCKED);
        this.video.muted = true;
        this.video.play().catch(() => this.blocked());
      } else {
        this.blocked();
      }
    });
  }

  private blocked(): void {
    this.emit(PlayerEventType.PLAYBACK_BLOCKED);
    this.setState(PlayerState.IDLE);
  }

  private onHlsError(data: ErrorData): void {
    const hls = this.hls;
    if (!hls) return;
    const code = data.response?.code ?? data.networkDetails?.status ?? 0;
    if (!data.fatal) {
      if (data.details === ErrorDetails.BUFFER_STALLED_ERROR) return; // reported as REBUFFERING
      this.emit(PlayerEventType.RECOVERABLE_ERROR, this.toError(data, code));
      return;
    }
    const manifest = data.details === ErrorDetails.MANIFEST_LOAD_ERROR || data.details === ErrorDetails.MANIFEST_LOAD_TIMEOUT || data.details === ErrorDetails.MANIFEST_PARSING_ERROR;
    // 401/403 (a private channel's session revoked, or refused by a
    // restriction policy) is final, like on the multivariant playlist.
    const refused = code === 401 || code === 403;
    if (!manifest && !refused && this.recoveries < 3) {
      this.recoveries++;
      this.emit(PlayerEventType.RECOVERABLE_ERROR, this.toError(data, code));
      if (data.type === ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else hls.startLoad();
      return;
    }
    // A live playlist that 404s after the stream has played means the stream ended.
    if (this.wasLive && code === 404 && !manifest) {
      this.setState(PlayerState.ENDED);
      return;
    }
    const err = this.toError(data, code);
    this.log(LogLevel.ERROR, err);
    this.teardown();
    this.playIntent = false;
    this.emit(PlayerEventType.ERROR, err);
    this.setState(PlayerState.IDLE);
  }

  private toError(data: ErrorData, code: number): PlayerError {
    const d = data.details;
    let source = 'Player';
    if (d === ErrorDetails.MANIFEST_LOAD_ERROR || d === ErrorDetails.MANIFEST_LOAD_TIMEOUT || d === ErrorDetails.MANIFEST_PARSING_ERROR) source = 'MasterPlaylist';
    else if (d.startsWith('level')) source = 'MediaPlaylist';
    else if (d.startsWith('frag') || d.startsWith('part')) source = 'Segment';
    else if (data.type === ErrorTypes.MEDIA_ERROR) source = 'Decode';
    let type: ErrorTypeValue = ErrorType.GENERIC;
    if (code === 401 || code === 403) type = ErrorType.AUTHORIZATION;
    else if (source === 'MasterPlaylist' && (code === 404 || code === 429)) type = ErrorType.NOT_AVAILABLE;
    else if (d.endsWith('Timeout') || d.includes('TIMEOUT')) type = ErrorType.TIMEOUT;
    else if (data.type === ErrorTypes.NETWORK_ERROR) type = code ? ErrorType.NETWORK : ErrorType.NETWORK_IO;
    else if (d.includes('Parsing') || d.includes('PARSING')) type = ErrorType.INVALID_DATA;
    else if (data.type === ErrorTypes.MEDIA_ERROR) type = ErrorType.NOT_SUPPORTED;
    return { type, code, source, message: data.error?.message || String(d) };
  }

  private bindVideo(): void {
    const v = this.video;
    const on = (name: string, fn: () => void) => {
      v.addEventListener(name, fn);
      this.videoHandlers.push([name, fn]);
    };
    let lastVolume = v.volume;
    let lastMuted = v.muted;
    on('playing', () => {
      this.seeking = false;
      if (this.state !== PlayerState.ENDED) this.setState(PlayerState.PLAYING);
    });
    on('waiting', () => {
      if (this.state === PlayerState.ENDED) return;
      if (this.state === PlayerState.PLAYING && !this.seeking) {
        this.emit(PlayerEventType.REBUFFERING);
        if (this.rebufferToLive && this.isLive && this.hls?.liveSyncPosition != null) {
          this.video.currentTime = this.hls.liveSyncPosition;
        }
      }
      if (this.state === PlayerState.PLAYING || this.state === PlayerState.READY) this.setState(PlayerState.BUFFERING);
    });
    on('pause', () => {
      if (this.video.ended || this.state === PlayerState.ENDED) return;
      this.setState(PlayerState.IDLE);
    });
    on('ended', () => this.setState(PlayerState.ENDED));
    on('timeupdate', () => {
      this.syncToLive();
      this.fireMetadata(v.currentTime); // where requestVideoFrameCallback is missing
      this.emit(PlayerEventType.TIME_UPDATE, v.currentTime);
    });
    on('seeked', () => {
      this.seeking = false;
      this.emit(PlayerEventType.SEEK_COMPLETED, v.currentTime);
    });
    on('ratechange', () => {
      // hls.js nudges the rate to catch up on live; only report user-visible changes.
      if (!this.isLive) this.emit(PlayerEventType.PLAYBACK_RATE_CHANGED, v.playbackRate);
    });
    on('durationchange', () => {
      if (!this.hls) this.emit(PlayerEventType.DURATION_CHANGED, v.duration);
    });
    on('volumechange', () => {
      if (v.volume !== lastVolume) {
        lastVolume = v.volume;
        this.emit(PlayerEventType.VOLUME_CHANGED, v.volume);
      }
      if (v.muted !== lastMuted) {
        lastMuted = v.muted;
        this.emit(PlayerEventType.MUTED_CHANGED);
      }
    });
    on('loadedmetadata', () => {
      if (!this.hls && this.state === PlayerState.IDLE) {
        // Native HLS path.
        this.isLive = v.duration === Infinity;
        this.setState(PlayerState.READY);
        if (this.playIntent || this.autoplay) this.startPlayback();
      }
    });
    const tracks = v.textTracks;
    const onTrack = () => this.watchTextTracks();
    tracks.addEventListener('addtrack', onTrack);
    this.unbindTracks = () => tracks.removeEventListener('addtrack', onTrack);
  }

  private unbindTracks: () => void = () => {};
  private watched = new WeakSet<TextTrack>();

  // hls.js turns ID3 into cues of a "metadata" text track and captions into
  // "captions" tracks; the browser fires cuechange when the playhead reaches a cue,
  // which is when IVS fires TEXT_METADATA_CUE / TEXT_CUE.
  private watchTextTracks(): void {
    const tracks = this.video.textTracks;
    for (let i = 0; i < tracks.length; i++) {
      const t = tracks[i];
      if (this.watched.has(t)) continue;
      this.watched.add(t);
      if (t.kind === 'captions' || t.kind === 'subtitles') {
        t.addEventListener('cuechange', () => {
          const cues = t.activeCues;
          if (!cues) return;
          for (let j = 0; j < cues.length; j++) {
            const c = cues[j] as VTTCue;
            this.emit(PlayerEventType.TEXT_CUE, {
              type: 'TextCue',
              startTime: c.startTime,
              endTime: c.endTime,
              text: c.text,
              line: typeof c.line === 'number' ? c.line : 0,
              size: c.size,
              position: typeof c.position === 'number' ? c.position / 100 : 0,
            });
          }
        });
      }
    }
  }

  // Timed metadata waiting for the playhead: ID3 tags of the fragments
  // hls.js parsed, by media time, each fired once when its frame plays.
  private pendingMeta: { pts: number; frames: ID3Frame[] }[] = [];

  private onMetadataSamples(samples: { pts: number; data: Uint8Array }[]): void {
    for (const s of samples) {
      const frames = parseID3(s.data);
      if (frames.length === 0) continue;
      // A fragment loaded twice (a level switch) brings its tags again.
      if (this.pendingMeta.some((m) => Math.abs(m.pts - s.pts) < 0.001 && sameFrames(m.frames, frames))) continue;
      if (this.firedMeta.some((m) => Math.abs(m.pts - s.pts) < 0.001 && sameFrames(m.frames, frames))) continue;
      this.pendingMeta.push({ pts: s.pts, frames });
    }
    this.pendingMeta.sort((a, b) => a.pts - b.pts);
    this.watchMetadata();
  }

  // firedMeta remembers recent tags so that a reloaded fragment does not
  // fire them twice.
  private firedMeta: { pts: number; frames: ID3Frame[] }[] = [];
  private metaWatch = false;

  // watchMetadata fires due tags at the frame they are dated at, using
  // requestVideoFrameCallback where the browser has it (the media time of
  // the frame on screen), else timeupdate.
  private watchMetadata(): void {
    const v = this.video as HTMLVideoElement & {
      requestVideoFrameCallback?: (cb: (now: number, meta: { mediaTime: number }) => void) => number;
    };
    if (this.metaWatch || this.pendingMeta.length === 0 || !v.requestVideoFrameCallback) return;
    this.metaWatch = true;
    const tick = (_now: number, meta: { mediaTime: number }) => {
      this.fireMetadata(meta.mediaTime);
      if (this.pendingMeta.length > 0 && !this.deleted) v.requestVideoFrameCallback!(tick);
      else this.metaWatch = false;
    };
    v.requestVideoFrameCallback(tick);
  }

  private fireMetadata(now: number): void {
    while (this.pendingMeta.length > 0 && this.pendingMeta[0].pts <= now + 0.001) {
      const m = this.pendingMeta.shift()!;
      this.firedMeta.push(m);
      if (this.firedMeta.length > 100) this.firedMeta.shift();
      this.emitMetadataCue(m.pts, m.frames);
    }
  }

  // emitMetadataCue reports one ID3 tag as IVS does: the text of its text
  // frame (TXXX, or another T*** frame), that frame's description, and the
  // owner identifier of its PRIV frame (metadata.live-video.net for the
  // PutMetadata API, inband.metadata.live-video.net for the encoder's) or,
  // without one, the description. The "segmentmetadata" tag opening every
  // TS segment is also reported as SEGMENT_METADATA, as the IVS player does.
  private emitMetadataCue(pts: number, frames: ID3Frame[]): void {
    const text = frames.find((f) => f.key === 'TXXX') ?? frames.find((f) => f.key[0] === 'T');
    const priv = frames.find((f) => f.key === 'PRIV');
    const description = text?.key === 'TXXX' ? text.info : '';
    const out: TextMetadataCue = {
      type: 'TextMetadataCue',
      startTime: pts,
      endTime: pts,
      text: text ? String(text.data) : priv ? new TextDecoder().decode(priv.data as ArrayBuffer) : '',
      description,
      owner: priv?.info ?? description,
    };
    this.emit(PlayerEventType.TEXT_METADATA_CUE, out);
    this.emit(PlayerEventType.METADATA, { type: 'MetaID3', data: frames });
    if (description === 'segmentmetadata' && out.text) {
      try {
        const offset = (JSON.parse(out.text) as { stream_offset?: number }).stream_offset;
        if (offset !== undefined) this.emit(PlayerEventType.SEGMENT_METADATA, { streamOffset: offset });
      } catch {
        // not JSON: only the cue
      }
    }
  }

  private unbindVideo(): void {
    for (const [name, fn] of this.videoHandlers) this.video.removeEventListener(name, fn);
    this.videoHandlers = [];
    this.unbindTracks();
  }
}
