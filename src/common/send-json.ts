import type { Response } from 'express';

/**
 * A JSON answer as `res.json` writes it, less the ETag: Express hashes every body it sends to
 * make one, and an answer to a POST (a completion, a submitted task, or an error) is never asked
 * for again by its tag.
 */
export function sendJson(res: Response, status: number, body: unknown, json = JSON.stringify(body)): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  // Set here, as res.send does: the compression middleware writes the head before Node could count the body.
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}
