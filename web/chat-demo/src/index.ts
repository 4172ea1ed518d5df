/*! openivs chat demo. Bundles amazon-ivs-chat-messaging 1.1.1 (https://ivschat.live-video.net/js/LICENSE.txt) and uuid 9.0.1 (MIT). */
// The chat panel of the demo page /play/<channelId>?room=<roomArn>: the
// official amazon-ivs-chat-messaging SDK, unchanged, connected to this
// node's messaging WebSocket (/chat) with tokens from the demo token
// endpoint, which stands in for an app's backend calling CreateChatToken.
import { ChatRoom, SendMessageRequest } from 'amazon-ivs-chat-messaging';
import type { ChatError, ChatMessage, ChatToken } from 'amazon-ivs-chat-messaging';

const TOKEN_URL = '/chat-demo/token';
// Messages kept on screen; older ones are dropped.
const MAX_MESSAGES = 200;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function start(panel: HTMLElement): void {
  const roomArn = panel.dataset.room || '';
  const state = $('chat-state');
  const reconnect = $<HTMLButtonElement>('chat-connect');
  const list = $<HTMLOListElement>('chat-messages');
  const errorLine = $('chat-error');
  const form = $<HTMLFormElement>('chat-form');
  const nameInput = $<HTMLInputElement>('chat-name');
  const input = $<HTMLInputElement>('chat-input');

  // userId is who this page is: the name typed in, or the random one the
  // endpoint gave; kept across the SDK's token refreshes.
  let userId = '';

  const showError = (msg: string) => {
    errorLine.textContent = msg;
    errorLine.hidden = !msg;
  };
  const setState = (s: string, text: string) => {
    panel.dataset.state = s;
    state.textContent = text;
    reconnect.hidden = s !== 'disconnected';
  };

  const append = (li: HTMLLIElement) => {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.appendChild(li);
    while (list.children.length > MAX_MESSAGES) list.removeChild(list.firstChild as Node);
    if (atBottom) list.scrollTop = list.scrollHeight;
  };
  const notice = (text: string) => {
    const li = document.createElement('li');
    li.className = 'notice';
    li.textContent = text;
    append(li);
  };

  // The SDK asks for a fresh token on every connection, and again before
  // the current one's tokenExpirationTime (tokens are single use).
  const tokenProvider = async (): Promise<ChatToken> => {
    const res = await fetch(TOKEN_URL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ roomArn, userId: userId || nameInput.value.trim() }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const msg = `Chat token refused (${res.status}): ${body.message || res.statusText}`;
      showError(msg);
      throw new Error(msg);
    }
    userId = body.userId;
    if (!nameInput.value.trim()) nameInput.value = userId;
    return { token: body.token, sessionExpirationTime: body.sessionExpirationTime, tokenExpirationTime: body.tokenExpirationTime };
  };

  const room = new ChatRoom({ regionOrUrl: (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/chat', tokenProvider });
  // The default, debug, logs each token to the console.
  room.logLevel = 'info';
  // Exposed for debugging, as play.js exposes window.player.
  (window as unknown as { chatRoom: ChatRoom }).chatRoom = room;

  room.addListener('connecting', () => setState('connecting', 'connecting…'));
  room.addListener('connect', () => {
    setState('connected', `connected as ${userId}`);
    showError('');
  });
  room.addListener('disconnect', (reason) => setState('disconnected', `disconnected (${reason})`));
  room.addListener('message', (m: ChatMessage) => {
    const li = document.createElement('li');
    li.dataset.id = m.id;
    if (m.sender.userId === userId) li.className = 'mine';
    li.title = m.sendTime.toLocaleTimeString();
    const sender = document.createElement('b');
    sender.className = 'sender';
    sender.textContent = m.sender.userId;
    const content = document.createElement('span');
    content.className = 'content';
    content.textContent = m.content;
    li.append(sender, content);
    append(li);
  });
  room.addListener('messageDelete', (e) => {
    list.querySelector(`li[data-id="${CSS.escape(e.messageId)}"]`)?.remove();
  });
  room.addListener('userDisconnect', (e) => notice(`${e.userId} was disconnected${e.reason ? `: ${e.reason}` : ''}`));
  room.addListener('event', (e) => notice(`event ${e.eventName}`));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const content = input.value;
    if (!content.trim()) return;
    if (room.state !== 'connected') {
      showError('Not connected.');
      return;
    }
    let sent: Promise<ChatMessage>;
    try {
      sent = room.sendMessage(new SendMessageRequest(content));
    } catch (err) {
      showError(`Not sent: ${(err as Error).message}`);
      return;
    }
    sent.then(
      () => {
        showError('');
        if (input.value === content) input.value = '';
      },
      // A ChatError: 406 (denied by review), 429 (rate), 413, 403, …
      (err: ChatError) => showError(err && err.errorCode ? `Not sent (${err.errorCode}): ${err.errorMessage}` : `Not sent: ${err}`),
    );
  });
  // A new name takes a new connection, with a token for that user.
  nameInput.addEventListener('change', () => {
    const name = nameInput.value.trim();
    if (!name || name === userId) return;
    userId = name;
    if (room.state !== 'disconnected') room.disconnect();
    room.connect();
  });
  reconnect.addEventListener('click', () => {
    showError('');
    room.connect();
  });

  if (!roomArn || roomArn.indexOf('{{') === 0) {
    setState('disconnected', 'no room');
    reconnect.hidden = true;
    showError('No chat room: add ?room=ROOM_ARN');
    return;
  }
  room.connect();
}

const panel = document.getElementById('chat');
if (panel) start(panel);
