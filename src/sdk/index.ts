/** taskhub SDK: the typed REST client (from openapi.json) and the device/worker socket client. */
export {
  createHubClient,
  type EnvelopeData,
  type HubClient,
  type HubClientOptions,
  type HubPaths,
  type HubSchemas,
} from './hub-client.js';
export * from './device-client.js';
