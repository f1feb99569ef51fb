// A client of sightd in a second language: recognises one image with a public model over gRPC and prints
// the labels, as one JSON line. It uses only the contract (proto/sightd/v1) and the two npm packages of
// gRPC for Node.js, installed pinned by `make node-client` into .deps/node-client.
//
//   node recognize.js --address 127.0.0.1:50051 --key sd_... --spec imagenet-mobilenet-v2 --image dog.jpg
//        [--proto-dir proto] [--max-predictions 5]
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

function options(argv) {
  const found = { protoDir: path.join(__dirname, '..', '..', '..', 'proto'), maxPredictions: 5 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    found[name] = argv[i + 1];
  }
  for (const required of ['address', 'key', 'spec', 'image']) {
    if (!found[required]) {
      throw new Error(`--${required} is required`);
    }
  }
  return found;
}

function main() {
  const opts = options(process.argv.slice(2));
  const definition = protoLoader.loadSync('sightd/v1/inference.proto', {
    includeDirs: [opts.protoDir],
    keepCase: true, // the contract's field names are v0.7's JSON keys
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const sightd = grpc.loadPackageDefinition(definition).sightd.v1;
  const client = new sightd.InferenceService(opts.address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('x-api-key', opts.key);
  const request = {
    spec_id: opts.spec,
    inputs: [{ image: { data: fs.readFileSync(opts.image) } }],
    max_predictions: Number(opts.maxPredictions),
  };
  client.Recognize(request, metadata, { deadline: Date.now() + 120000 }, (error, answer) => {
    client.close();
    if (error) {
      process.stderr.write(`recognition failed: ${error.code} ${error.details}\n`);
      process.exitCode = 1;
      return;
    }
    const labels = answer.result.outputs[0].labels.predicted.map((p) => ({
      label_id: p.label_id,
      label_name: p.label_name,
      score: p.score,
    }));
    process.stdout.write(JSON.stringify({ spec: opts.spec, labels }) + '\n');
  });
}

main();
