// The official amazon-ivs-chat-messaging SDK against openivs chat messaging.
// Run by internal/chat/messaging TestOfficialSDK, which starts the server and
// sets CHAT_URL (the ws:// URL passed as regionOrUrl) and TOKEN_URL (a test
// endpoint that mints chat tokens: POST {userId, capabilities, attributes,
// sessionSeconds, expired} → {token, sessionExpirationTime, tokenExpirationTime},
// the shape of CreateChatToken's response).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SendMessageRequest,
  DeleteMessageRequest,
  DisconnectUserRequest,
} from 'amazon-ivs-chat-messaging';
import { harness, once, waitFor, withLogs, ALL } from './harness.mjs';

const { CHAT_URL, TOKEN_URL } = process.env;
assert.ok(CHAT_URL && TOKEN_URL, 'CHAT_URL and TOKEN_URL must be set (run TestOfficialSDK)');

async function mint(spec) {
  const res = await fetch(TOKEN_URL, { method: 'POST', body: JSON.stringify(spec) });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

const { open, connect } = harness(CHAT_URL, mint);

test('send, receive, delete and disconnect with the official SDK', (t) =>
  withLogs(t, async () => {
    const alice = await connect({ userId: 'alice', capabilities: ALL, attributes: { displayName: 'Alice' } });
    const bob = await connect({ userId: 'bob', capabilities: ['SEND_MESSAGE'] });
    const carol = await connect({ userId: 'carol' });

    // send: the promise resolves with the broadcast message itself.
    const sent = await alice.room.sendMessage(new SendMessageRequest('hello, room', { color: 'red' }));
    assert.equal(sent.content, 'hello, room');
    assert.equal(sent.sender.userId, 'alice');
    assert.deepEqual(sent.sender.attributes, { displayName: 'Alice' });
    assert.deepEqual(sent.attributes, { color: 'red' });
    assert.match(sent.id, /^[A-Za-z0-9]{12}$/);
    assert.ok(sent.sendTime instanceof Date && !isNaN(sent.sendTime));
    assert.ok(Math.abs(sent.sendTime - Date.now()) < 60_000);

    // receive, by the other SDK clients.
    for (const r of [bob, carol]) {
      const got = await waitFor('message', () => r.seen.messages.find((m) => m.id === sent.id));
      assert.equal(got.content, 'hello, room');
      assert.equal(got.sender.userId, 'alice');
      assert.equal(got.requestId, sent.requestId);
    }
    const reply = await bob.room.sendMessage(new SendMessageRequest('hi alice'));
    await waitFor('reply', () => alice.seen.messages.find((m) => m.id === reply.id));

    // delete: resolves with the messageDelete event, which everyone gets.
    const del = await alice.room.deleteMessage(new DeleteMessageRequest(sent.id, 'spam'));
    assert.equal(del.messageId, sent.id);
    assert.equal(del.reason, 'spam');
    for (const r of [bob, carol]) {
      const got = await waitFor('messageDelete', () => r.seen.deletes.find((d) => d.messageId === sent.id));
      assert.equal(got.reason, 'spam');
    }

    // disconnect user: bob hears about it, then the server closes him
    // cleanly, which the SDK reports as serverDisconnect (no reconnect).
    const bobGone = once(bob.room, 'disconnect');
    const ev = await alice.room.disconnectUser(new DisconnectUserRequest('bob', 'rude'));
    assert.equal(ev.userId, 'bob');
    assert.equal(ev.reason, 'rude');
    assert.equal(await bobGone, 'serverDisconnect');
    assert.equal(bob.room.state, 'disconnected');
    assert.ok(bob.seen.disconnects.some((d) => d.userId === 'bob'), 'bob got the aws:DISCONNECT_USER event first');
    await waitFor('userDisconnect at carol', () => carol.seen.disconnects.find((d) => d.userId === 'bob'));
    assert.equal(bob.calls.tokens, 1, 'no reconnect after a moderator disconnect');

    // Everyone else carries on.
    const after = await alice.room.sendMessage(new SendMessageRequest('still here'));
    await waitFor('message after disconnect', () => carol.seen.messages.find((m) => m.id === after.id));
  }));

test('a missing capability is the SDK error 403', (t) =>
  withLogs(t, async () => {
    const viewer = await connect({ userId: 'viewer' });
    for (const req of [
      new SendMessageRequest('hi'),
      new DeleteMessageRequest('AbCdEfGh1234'),
      new DisconnectUserRequest('someone'),
    ]) {
      const method = { SEND_MESSAGE: 'sendMessage', DELETE_MESSAGE: 'deleteMessage', DISCONNECT_USER: 'disconnectUser' }[req.action];
      await assert.rejects(viewer.room[method](req), (err) => {
        assert.equal(err.errorCode, 403);
        assert.equal(err.requestId, req.requestId);
        assert.match(err.id, /^[A-Za-z0-9]{12}$/);
        assert.equal(typeof err.errorMessage, 'string');
        return true;
      });
    }
    assert.equal(viewer.room.state, 'connected');
  }));

test('a message over the room maximumMessageLength is the SDK error 400', (t) =>
  withLogs(t, async () => {
    const alice = await connect({ userId: 'alice', capabilities: ['SEND_MESSAGE'] });
    await assert.rejects(alice.room.sendMessage(new SendMessageRequest('x'.repeat(501))), { errorCode: 400 });
    const ok = await alice.room.sendMessage(new SendMessageRequest('é'.repeat(500)));
    assert.equal(ok.content.length, 500);
  }));

test('a used token is refused: the SDK retries, then reports socketError', (t) =>
  withLogs(t, async () => {
    const { token } = await mint({ userId: 'alice' });
    await connect({}, { tokenProvider: async () => ({ token }) });
    const again = open({}, { tokenProvider: async () => ({ token }), maxReconnectAttempts: 2 });
    const gone = once(again.room, 'disconnect');
    again.room.connect();
    assert.equal(await gone, 'socketError');
    assert.equal(again.calls.tokens, 3, 'first try and two retries');
  }));

test('an expired token is refused with socketError', (t) =>
  withLogs(t, async () => {
    const r = open({ userId: 'alice', expired: true });
    const gone = once(r.room, 'disconnect');
    r.room.connect();
    assert.equal(await gone, 'socketError');
    assert.deepEqual(r.seen.states, ['connecting', 'disconnect:socketError']);
  }));

test('at session expiry the SDK gets 401 and reconnects with a new token', (t) =>
  withLogs(t, async () => {
    const alice = await connect({ userId: 'alice', capabilities: ['SEND_MESSAGE'], sessionSeconds: 1.5 });
    // The 401 ERROR makes the SDK fetch a fresh token and reconnect.
    await waitFor('reconnect', () => alice.calls.tokens === 2 && alice.room.state === 'connected');
    assert.deepEqual(alice.seen.states.slice(0, 3), ['connecting', 'connect', 'connecting']);
    const m = await alice.room.sendMessage(new SendMessageRequest('back'));
    assert.equal(m.content, 'back');
  }));
