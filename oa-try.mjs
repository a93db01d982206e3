import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { SwaggerModule, DocumentBuilder } from '@nestjs/swagger';
import { AppModule } from '/work/h-openapi/dist/src/app.module.js';
import { loadConfig } from '/work/h-openapi/dist/src/config/app-config.js';
const config = loadConfig({});
const app = await NestFactory.create(AppModule.forRoot(config), { preview: true, logger: false, abortOnError: false });
const doc = SwaggerModule.createDocument(app, new DocumentBuilder().setTitle('x').build());
import fs from 'fs';
fs.writeFileSync('/tmp/doc0.json', JSON.stringify(doc, null, 2));
let n = 0;
for (const [p, ops] of Object.entries(doc.paths))
  for (const [m, op] of Object.entries(ops)) {
    n++;
    const rs = Object.entries(op.responses || {}).map(([s, r]) => s + (r.content ? '+c' : ''));
    console.log(m.toUpperCase().padEnd(7), p.padEnd(45), op.operationId.padEnd(40), rs.join(' '));
  }
console.log(n);
await app.close();
