// What both Node suites need to drive the official amazon-ivs-chat-messaging
// SDK: ChatRooms that record everything they hear, with a token provider
// minting a fresh (single-use) token per connection, and waiting helpers.
import { after } from 'node:test';
import WebSocket from 'ws';
import { ChatRoom } from 'amazon-ivs-chat-messaging';

// The SDK uses the global WebSocket, which Node 20 lacks; Node 22+ has a
// standard one, the closest to a browser's, so it is kept when present.
globalThis.WebSocket ??= WebSocket;

export const TIMEOUT = 10_000;
export const ALL = ['SEND_MESSAGE', 'DELETE_MESSAGE', 'DISCONNECT_USER'];

// The SDK logs at debug level to the console by default; kept for failures.
const logs = [];
const logger = {
  debug: (...a) => logs.push(['debug', ...a]),
  info: (...a) => logs.push(['info', ...a]),
  warn: (...a) => logs.push(['warn', ...a]),
  error: (...a) => logs.push(['error', ...a]),
};

// harness returns open/connect for a chat URL and a token minter
// (spec → CreateChatToken's response shape).
export function harness(chatURL, mint) {
  const rooms = [];
  after(() => rooms.forEach(({ room }) => room.state !== 'disconnected' && room.disconnect()));

  // open builds a ChatRoom recording everything it hears. tokenProvider
  // defaults to minting a fresh token per call, as IVS needs (single use).
  function open(spec, { tokenProvider, maxReconnectAttempts = 0 } = {}) {
    const calls = { tokens: 0 };
    const room = new ChatRoom({
      regionOrUrl: chatURL,
      maxReconnectAttempts,
      tokenProvider: async () => {
        calls.tokens++;
        return tokenProvider ? tokenProvider() : mint(spec);
      },
    });
    room.logger = logger;
    const seen = { messages: [], events: [], deletes: [], disconnects: [], states: [] };
    room.addListener('message', (m) => seen.messages.push(m));
    room.addListener('event', (e) => seen.events.push(e));
    room.addListener('messageDelete', (e) => seen.deletes.push(e));
    room.addListener('userDisconnect', (e) => seen.disconnects.push(e));
    for (const s of ['connecting', 'connect', 'disconnect']) {
      room.addListener(s, (reason) => seen.states.push(reason ? `${s}:${reason}` : s));
    }
    const r = { room, seen, calls };
    rooms.push(r);
    return r;
  }

  async function connect(spec, opts) {
    const r = open(spec, opts);
    const connected = once(r.room, 'connect');
    r.room.connect();
    await connected;
    return r;
  }

  return { open, connect };
}

export function once(room, name) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${name}" within ${TIMEOUT} ms`)), TIMEOUT);
    const off = room.addListener(name, (payload) => {
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

export async function waitFor(what, fn) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// withLogs: a failing test shows what the SDK logged.
export async function withLogs(t, fn) {
  logs.length = 0;
  try {
    await fn();
  } catch (err) {
    t.diagnostic(logs.map((l) => l.map(String).join(' ')).join('\n'));
    throw err;
  }
}
