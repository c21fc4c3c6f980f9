// The control WebSocket: one socket per page, reconnecting with backoff.
//
// Commands are never queued while disconnected: a "reset" or "snapshot"
// replayed minutes later would surprise the person, so `send` refuses at once
// and the caller says "not connected" instead.

import { Backoff } from './util.js';

const REPLY_TIMEOUT_MS = 5000;
// A phone that changes networks leaves a half-open socket that never errors;
// a periodic ping notices it.
const PING_EVERY_MS = 15000;

export class NotConnected extends Error {
  constructor() {
    super('not connected to the camera');
    this.name = 'NotConnected';
  }
}

export class Control {
  /** `onState(state)` gets 'connecting' | 'open' | 'closed'. */
  constructor(path = '/control', { onState = () => {} } = {}) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.url = `${scheme}//${location.host}${path}`;
    this.onState = onState;
    this.backoff = new Backoff(500, 10000);
    this.pending = new Map();
    this.nextId = 1;
    this.ws = null;
    this.pingTimer = null;
    this.reconnectTimer = null;
    this.closed = false;
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.closed) return;
    this.onState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      this.backoff.reset();
      this.onState('open');
      this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
    });
    ws.addEventListener('message', (ev) => this.receive(ev.data));
    // 'error' is always followed by 'close': reconnect from one place only.
    ws.addEventListener('close', () => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pingTimer);
      this.failPending('connection lost before the camera answered');
      this.onState('closed');
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (this.closed) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), this.backoff.next());
  }

  /**
   * Closes for good (the page switched to another camera): no reconnect, and
   * commands still waiting are rejected. A socket still connecting is closed
   * once it opens, since closing it earlier makes Chromium log an error.
   */
  close() {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    this.failPending('closed: the page switched camera');
    if (!ws) return;
    if (ws.readyState === WebSocket.CONNECTING) ws.addEventListener('open', () => ws.close());
    else ws.close();
  }

  receive(text) {
    let reply;
    try {
      reply = JSON.parse(text);
    } catch {
      return;
    }
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    clearTimeout(waiter.timer);
    waiter.resolve(reply);
  }

  failPending(reason) {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(reason));
    }
    this.pending.clear();
  }

  /**
   * Sends one command and resolves with its reply (matched by `id`). Rejects
   * at once with NotConnected when the socket is not open.
   */
  send(command, timeoutMs = REPLY_TIMEOUT_MS) {
    if (!this.connected) return Promise.reject(new NotConnected());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('the camera did not answer in time'));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...command, id }));
    });
  }

  async ping() {
    const ws = this.ws;
    try {
      await this.send({ cmd: 'ping' });
    } catch (e) {
      // No pong: the socket is dead even if the browser has not noticed.
      if (!(e instanceof NotConnected) && ws && ws === this.ws) ws.close();
    }
  }
}
