/** Socket contracts of every channel: pure types (and const event lists), no hub code. */
export type * from './error.js';
export type * from './tasks.js';
export type * from './notices.js';
export type * as Device from './device.js';
export type * as Events from './events.js';
export type * as WsStream from './ws-stream.js';
export type * as NodeChannel from './node-channel.js';
export type * as LogChannel from './log-channel.js';
export { DEVICE_INBOUND_EVENTS } from './device.js';
