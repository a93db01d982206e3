import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import express from 'express';
import { ConfigError, loadConfig } from '../../src/config/app-config.js';
import {
  clientAddress,
  markProxyTrust,
  type ProxyTrust,
  trustProxySetting,
} from '../../src/modules/edge/client-address.js';

/** Express's compiled `trust proxy fn` for a TRUST_PROXY value: what the hub's HTTP server uses. */
function compiled(value: string): ProxyTrust {
  const app = express();
  app.set('trust proxy', trustProxySetting(value));
  return app.get('trust proxy fn') as ProxyTrust;
}

/** A request from `peer` carrying `forwardedFor`, on a connection the server marked with TRUST_PROXY=`value`. */
function request(value: string | null, peer: string, forwardedFor?: string): IncomingMessage {
  const socket = { remoteAddress: peer } as Socket;
  if (value !== null) {
    const server = new EventEmitter();
    markProxyTrust(server as Server, compiled(value));
    server.emit('connection', socket);
  }
  const headers = forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor };
  return { socket, connection: socket, headers } as unknown as IncomingMessage;
}

describe('TRUST_PROXY and clientAddress', () => {
  it('reads TRUST_PROXY the way Express reads trust proxy', () => {
    expect(trustProxySetting('false')).toBe(false);
    expect(trustProxySetting('')).toBe(false);
    expect(trustProxySetting('true')).toBe(true);
    expect(trustProxySetting('2')).toBe(2);
    expect(trustProxySetting('loopback, 10.0.0.0/8')).toBe('loopback, 10.0.0.0/8');
    expect(loadConfig({}).TRUST_PROXY).toBe('false');
    expect(loadConfig({ TRUST_PROXY: 'loopback,10.0.0.0/8,fd00::/8' }).TRUST_PROXY).toBe(
      'loopback,10.0.0.0/8,fd00::/8',
    );
  });

  it.each(['nonsense', '10.0.0.0/99', 'loopback,,10.0.0.1', '-1'])('refuses TRUST_PROXY=%s naming it', (value) => {
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(ConfigError);
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY=/);
  });

  it('without a trusted proxy the socket peer is the client (IPv4-mapped written as IPv4)', () => {
    expect(clientAddress(request(null, '::ffff:10.1.2.3', '203.0.113.1'))).toBe('10.1.2.3');
    expect(clientAddress(request('false', '::ffff:127.0.0.1', '203.0.113.1'))).toBe('127.0.0.1');
  });

  it('behind trusted proxies the client is the right-most untrusted X-Forwarded-For hop', () => {
    expect(clientAddress(request('loopback', '127.0.0.1', '203.0.113.1'))).toBe('203.0.113.1');
    expect(clientAddress(request('loopback', '::ffff:127.0.0.1', '203.0.113.1'))).toBe('203.0.113.1');
    expect(clientAddress(request('loopback', '::1', 'spoofed, 198.51.100.2, 127.0.0.1'))).toBe('198.51.100.2');
    // A peer that is not trusted: its header is not believed.
    expect(clientAddress(request('loopback', '10.0.0.5', '203.0.113.1'))).toBe('10.0.0.5');
    expect(clientAddress(request('loopback,10.0.0.0/8', '10.0.0.5', '203.0.113.1, 10.9.9.9'))).toBe('203.0.113.1');
    // A hop count: the peer and one more.
    expect(clientAddress(request('2', '10.0.0.5', 'spoofed, 203.0.113.1, 10.9.9.9'))).toBe('203.0.113.1');
    expect(clientAddress(request('true', '10.0.0.5', '203.0.113.1, 10.9.9.9'))).toBe('203.0.113.1');
    // No header: the peer.
    expect(clientAddress(request('loopback', '127.0.0.1'))).toBe('127.0.0.1');
  });
});
