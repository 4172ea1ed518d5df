// The official amazon-ivs-chat-messaging SDK against a real `openivs serve`.
// Run by test/e2e TestChatOfficialSDKAgainstServer, which starts the server
// and sets CHAT_URL (the ws:// URL passed as regionOrUrl) and API_URL, an
// application backend that calls the real IVS Chat API with the AWS SDK:
//   POST /room {maximumMessageLength?}                        → {arn}
//   POST /token {room, userId, capabilities, attributes, sessionSeconds?}
//        → CreateChatToken's {token, sessionExpirationTime, tokenExpirationTime}
//   POST /event {room, eventName, attributes}                 → {id}   (SendEvent)
//   POST /delete-message {room, id, reason}                   → {id}   (DeleteMessage)
//   POST /disconnect-user {room, userId, reason}              → {}     (DisconnectUser)
//   POST /delete-room {room}                                  → {}     (DeleteRoom)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SendMessageRequest,
  DeleteMessageRequest,
  DisconnectUserRequest,
} from 'amazon-ivs-chat-messaging';
import { harness, once, waitFor, withLogs, ALL } from './harness.mjs';

const { CHAT_URL, API_URL } = process.env;
assert.ok(CHAT_URL && API_URL, 'CHAT_URL and API_URL must be set (run TestChatOfficialSDKAgainstServer)');

async function api(path, body) {
  const res = await fetch(API_URL + path, { method: 'POST', body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, `${path}: ${text}`);
  return JSON.parse(text);
}

const newRoom = async (settings = {}) => (await api('/room', settings)).arn;
const mint = (room, spec) => api('/token', { room, ...spec });
const h = harness(CHAT_URL, ({ room, ...spec }) => mint(room, spec));
// open and connect take the room first: each test makes its own.
const open = (roomArn, spec, opts) => h.open({ room: roomArn, ...spec }, opts);
const connect = (roomArn, spec, opts) => h.connect({ room: roomArn, ...spec }, opts);

// ready: the connection hears its own message, so it is in the room.
async function ready(r) {
  const m = await r.room.sendMessage(new SendMessageRequest(`ready ${Math.random()}`));
  await waitFor('own readiness message', () => r.seen.messages.find((x) => x.id === m.id));
}

test('SDK send, receive, delete and disconnect through openivs serve', (t) =>
  withLogs(t, async () => {
    const arn = await newRoom();
    const alice = await connect(arn, { userId: 'alice', capabilities: ALL, attributes: { displayName: 'Alice' } });
    const bob = await connect(arn, { userId: 'bob', capabilities: ['SEND_MESSAGE'] });
    await ready(alice);
    await ready(bob);

    const sent = await alice.room.sendMessage(new SendMessageRequest('hello from the SDK', { color: 'blue' }));
    assert.equal(sent.content, 'hello from the SDK');
    assert.equal(sent.sender.userId, 'alice');
    assert.deepEqual(sent.sender.attributes, { displayName: 'Alice' });
    assert.deepEqual(sent.attributes, { color: 'blue' });
    assert.match(sent.id, /^[A-Za-z0-9]{12}$/);
    assert.ok(sent.sendTime instanceof Date && Math.abs(sent.sendTime - Date.now()) < 60_000);
    for (const r of [alice, bob]) {
      const got = await waitFor('message', () => r.seen.messages.find((m) => m.id === sent.id));
      assert.equal(got.content, 'hello from the SDK');
      assert.equal(got.sender.userId, 'alice');
      assert.deepEqual(got.sender.attributes, { displayName: 'Alice' });
      assert.deepEqual(got.attributes, { color: 'blue' });
      assert.equal(got.requestId, sent.requestId);
    }
    const reply = await bob.room.sendMessage(new SendMessageRequest('hi alice'));
    const heard = await waitFor('reply', () => alice.seen.messages.find((m) => m.id === reply.id));
    assert.equal(heard.sender.userId, 'bob');

    // DeleteMessageRequest (DELETE_MESSAGE): everyone gets messageDelete.
    const del = await alice.room.deleteMessage(new DeleteMessageRequest(sent.id, 'spam'));
    assert.equal(del.messageId, sent.id);
    assert.equal(del.reason, 'spam');
    for (const r of [alice, bob]) {
      const got = await waitFor('messageDelete', () => r.seen.deletes.find((d) => d.messageId === sent.id));
      assert.equal(got.reason, 'spam');
      assert.equal(got.id, del.id);
    }

    // DisconnectUserRequest (DISCONNECT_USER): bob is closed by the server.
    const bobGone = once(bob.room, 'disconnect');
    const ev = await alice.room.disconnectUser(new DisconnectUserRequest('bob', 'rude'));
    assert.equal(ev.userId, 'bob');
    assert.equal(ev.reason, 'rude');
    assert.equal(await bobGone, 'serverDisconnect');
    assert.equal(bob.room.state, 'disconnected');
    assert.ok(bob.seen.disconnects.some((d) => d.userId === 'bob'), 'bob heard of his own disconnect');
    await waitFor('userDisconnect at alice', () => alice.seen.disconnects.find((d) => d.userId === 'bob'));
    assert.equal(bob.calls.tokens, 1, 'no reconnect after a moderator disconnect');
    assert.equal(alice.room.state, 'connected');
  }));

test('a token without SEND_MESSAGE gets the SDK error 403', (t) =>
  withLogs(t, async () => {
    const arn = await newRoom();
    const viewer = await connect(arn, { userId: 'viewer', capabilities: [] });
    for (const [method, req] of [
      ['sendMessage', new SendMessageRequest('hi')],
      ['deleteMessage', new DeleteMessageRequest('AbCdEfGh1234')],
      ['disconnectUser', new DisconnectUserRequest('someone')],
    ]) {
      await assert.rejects(viewer.room[method](req), (err) => {
        assert.equal(err.errorCode, 403, `${method}: ${JSON.stringify(err)}`);
        assert.equal(err.requestId, req.requestId);
        assert.match(err.id, /^[A-Za-z0-9]{12}$/);
        assert.equal(typeof err.errorMessage, 'string');
        return true;
      });
    }
    assert.equal(viewer.room.state, 'connected');
  }));

test('a token already used once is refused: socketError', (t) =>
  withLogs(t, async () => {
    const arn = await newRoom();
    const tok = await mint(arn, { userId: 'alice', capabilities: ['SEND_MESSAGE'] });
    assert.ok(new Date(tok.tokenExpirationTime) > new Date());
    assert.ok(new Date(tok.sessionExpirationTime) > new Date(tok.tokenExpirationTime));
    const first = await connect(arn, {}, { tokenProvider: async () => tok });
    await ready(first);
    const again = open(arn, {}, { tokenProvider: async () => tok });
    const gone = once(again.room, 'disconnect');
    again.room.connect();
    assert.equal(await gone, 'socketError');
    assert.deepEqual(again.seen.states, ['connecting', 'disconnect:socketError']);
    assert.equal(first.room.state, 'connected');
  }));

test("the room's maximumMessageLength from CreateRoom is the SDK error 400", (t) =>
  withLogs(t, async () => {
    const arn = await newRoom({ maximumMessageLength: 5 });
    const alice = await connect(arn, { userId: 'alice', capabilities: ['SEND_MESSAGE'] });
    await assert.rejects(alice.room.sendMessage(new SendMessageRequest('toolong')), { errorCode: 400 });
    const ok = await alice.room.sendMessage(new SendMessageRequest('short'));
    assert.equal(ok.content, 'short');
  }));

test('the API’s SendEvent, DeleteMessage, DisconnectUser and DeleteRoom reach SDK clients', (t) =>
  withLogs(t, async () => {
    const arn = await newRoom();
    const alice = await connect(arn, { userId: 'alice', capabilities: ['SEND_MESSAGE'] });
    const bob = await connect(arn, { userId: 'bob', capabilities: ['SEND_MESSAGE'] });
    await ready(alice);
    await ready(bob);

    // SendEvent → 'event' with the id the API returned.
    const { id: eventId } = await api('/event', { room: arn, eventName: 'app:poll', attributes: { question: 'tea?' } });
    for (const r of [alice, bob]) {
      const e = await waitFor('event', () => r.seen.events.find((x) => x.id === eventId));
      assert.equal(e.eventName, 'app:poll');
      assert.deepEqual(e.attributes, { question: 'tea?' });
      assert.ok(e.sendTime instanceof Date && Math.abs(e.sendTime - Date.now()) < 60_000);
    }

    // DeleteMessage → 'messageDelete'.
    const sent = await alice.room.sendMessage(new SendMessageRequest('delete me'));
    await waitFor('message at bob', () => bob.seen.messages.find((m) => m.id === sent.id));
    const { id: deleteId } = await api('/delete-message', { room: arn, id: sent.id, reason: 'moderated' });
    for (const r of [alice, bob]) {
      const d = await waitFor('messageDelete', () => r.seen.deletes.find((x) => x.messageId === sent.id));
      assert.equal(d.reason, 'moderated');
      assert.equal(d.id, deleteId);
    }
    assert.equal(alice.seen.events.length + bob.seen.events.length, 2, 'aws: events are not plain events');

    // DisconnectUser → the victim is disconnected, the others hear 'userDisconnect'.
    const bobGone = once(bob.room, 'disconnect');
    await api('/disconnect-user', { room: arn, userId: 'bob', reason: 'by the API' });
    assert.equal(await bobGone, 'serverDisconnect');
    const u = await waitFor('userDisconnect at alice', () => alice.seen.disconnects.find((d) => d.userId === 'bob'));
    assert.equal(u.reason, 'by the API');
    assert.equal(bob.calls.tokens, 1, 'no reconnect after DisconnectUser');

    // DeleteRoom closes the room's connections in an orderly way.
    const aliceGone = once(alice.room, 'disconnect');
    await api('/delete-room', { room: arn });
    assert.equal(await aliceGone, 'serverDisconnect');
    assert.equal(alice.calls.tokens, 1, 'no reconnect into a deleted room');
  }));
