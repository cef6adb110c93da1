// Read a zcollection Flight server from Node.js (tests/interop/test_js_client.py).
//
//   node read_collection.mjs <grpc://host:port> <command JSON> [flight_protocol.proto]
//
// There is no Arrow Flight client for JavaScript on npm, so this speaks the Flight gRPC
// service directly: @grpc/grpc-js with our own copy of the Flight protocol messages
// (tests/interop/flight_protocol.proto, loaded by @grpc/proto-loader), and apache-arrow to
// decode the IPC payloads. A FlightData message carries one IPC message: its data_header is
// the flatbuffer Message and its data_body the body, so a DoGet stream is rebuilt as an IPC
// stream (0xFFFFFFFF continuation marker, int32 metadata length, metadata padded to 8 bytes,
// body; then the end-of-stream marker) and read with apache-arrow.
//
// It lists the flights, calls GetFlightInfo on a CMD descriptor holding the command, DoGet on
// every endpoint, and prints one JSON object with the row count and per-column checksums, the
// same as the C++ client (tests/interop/cpp/flight_client.cc):
//   - 64-bit integer columns (int64, timestamp, duration): sum modulo 2^64 (a decimal string);
//   - float32/float64 columns, plain or arrow.fixed_shape_tensor: the sum in double of the
//     non-NaN values in stream order, the NaN count, and the sum of the IEEE bit patterns
//     modulo 2^64 (a decimal string).
// Streams whose schema metadata has zcollection.immutable = "true" are reported apart.

import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { RecordBatchReader, Type } from "apache-arrow";

const EXTENSION_NAME = "ARROW:extension:name";

function usage() {
  process.stderr.write(
    "usage: node read_collection.mjs <grpc://host:port> <command JSON> [flight_protocol.proto]\n",
  );
  process.exit(2);
}

function connect(uri, protoPath) {
  const match = /^grpc(?:\+tcp)?:\/\/(.+)$/.exec(uri);
  if (!match) throw new Error(`unsupported location ${uri} (only grpc:// and grpc+tcp://)`);
  const definition = protoLoader.loadSync(protoPath, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const { FlightService } = grpc.loadPackageDefinition(definition).arrow.flight.protocol;
  return new FlightService(match[1], grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
  });
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

async function collect(stream) {
  const messages = [];
  for await (const message of stream) messages.push(message);
  return messages;
}

/** Frame one IPC message (flatbuffer metadata + body) as in an IPC stream. */
function frame(header, body) {
  const padding = (8 - (header.length % 8)) % 8;
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32LE(0xffffffff, 0);
  prefix.writeInt32LE(header.length + padding, 4);
  return [prefix, header, Buffer.alloc(padding), body];
}

const END_OF_STREAM = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** Rebuild the IPC stream of a DoGet answer (a list of FlightData messages). */
function ipcStream(messages) {
  const parts = [];
  for (const data of messages) {
    if (data.data_header.length === 0) continue; // app_metadata only
    parts.push(...frame(data.data_header, data.data_body));
  }
  parts.push(END_OF_STREAM);
  return Buffer.concat(parts);
}

/** The schema of a FlightInfo: an encapsulated IPC message, read as a stream of its own. */
function flightSchema(bytes) {
  if (bytes.length === 0) return null;
  const reader = RecordBatchReader.from(Buffer.concat([bytes, END_OF_STREAM]));
  reader.open();
  return reader.schema;
}

function newStats(field) {
  const extension = field.metadata.get(EXTENSION_NAME);
  const type = String(field.type);
  return {
    type: extension ? `${extension}<${type}>` : type,
    count: 0,
    nulls: 0,
    intSum: null,
    floatSum: null,
    nan: 0,
    bits: 0n,
  };
}

const MASK64 = (1n << 64n) - 1n;
const FLUSH = 1 << 20; // exact in a double: 2^20 values of at most 2^32 each

/** Add values[start, end) of a float typed array. */
function addFloats(values, start, end, stats) {
  const width = values.BYTES_PER_ELEMENT;
  if (stats.floatSum === null) stats.floatSum = 0;
  if (width === 4) {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    let pending = 0;
    let n = 0;
    for (let i = start; i < end; ++i) {
      pending += bits[i];
      if (++n === FLUSH) {
        stats.bits += BigInt(pending);
        pending = 0;
        n = 0;
      }
    }
    stats.bits += BigInt(pending);
  } else {
    const bits = new BigUint64Array(values.buffer, values.byteOffset, values.length);
    for (let i = start; i < end; ++i) stats.bits += bits[i];
  }
  stats.bits &= MASK64;
  let sum = stats.floatSum;
  for (let i = start; i < end; ++i) {
    const value = values[i];
    if (Number.isNaN(value)) ++stats.nan;
    else sum += value;
  }
  stats.floatSum = sum;
  stats.count += end - start;
}

/** Add values[start, end) of a 64-bit integer typed array. */
function addInts(values, start, end, stats) {
  let sum = stats.intSum ?? 0n;
  for (let i = start; i < end; ++i) sum += values[i];
  stats.intSum = BigInt.asUintN(64, sum);
  stats.count += end - start;
}

/** Add the logical values [start, end) of a primitive Data chunk. */
function addPrimitive(data, start, end, stats) {
  const values = data.values;
  const first = data.offset + start;
  const last = data.offset + end;
  switch (data.typeId) {
    case Type.Float:
      if (values instanceof Float32Array || values instanceof Float64Array) {
        return addFloats(values, first, last, stats);
      }
      break;
    case Type.Int:
    case Type.Timestamp:
    case Type.Duration:
      if (values instanceof BigInt64Array) return addInts(values, first, last, stats);
      break;
    default:
      break;
  }
  throw new Error(`no checksum for type ${data.type}`);
}

function addColumn(data, stats) {
  stats.nulls += data.nullCount;
  if (data.typeId === Type.FixedSizeList) {
    // a tensor row is listSize consecutive values of the child
    const size = data.type.listSize;
    const child = data.children[0];
    if (child.nullCount > 0) throw new Error("null tensor elements");
    if (data.nullCount === 0) {
      return addPrimitive(child, data.offset * size, (data.offset + data.length) * size, stats);
    }
    for (let row = 0; row < data.length; ++row) {
      if (data.getValid(row)) {
        const start = (data.offset + row) * size;
        addPrimitive(child, start, start + size, stats);
      }
    }
    return undefined;
  }
  if (data.nullCount > 0) throw new Error(`nulls in column of type ${data.type}`);
  return addPrimitive(data, 0, data.length, stats);
}

function readStream(bytes, totals) {
  const reader = RecordBatchReader.from(bytes);
  reader.open();
  const immutable = reader.schema.metadata.get("zcollection.immutable") === "true";
  const target = immutable ? totals.immutable : totals.partitioned;
  for (const batch of reader) {
    target.batches += 1;
    target.rows += batch.numRows;
    batch.schema.fields.forEach((field, index) => {
      target.columns[field.name] ??= newStats(field);
      for (const data of batch.getChildAt(index).data) addColumn(data, target.columns[field.name]);
    });
  }
}

function columnsJson(columns) {
  const out = {};
  for (const name of Object.keys(columns).sort()) {
    const stats = columns[name];
    const entry = { type: stats.type, count: stats.count, nulls: stats.nulls };
    if (stats.intSum !== null) entry.sum = stats.intSum.toString();
    if (stats.floatSum !== null) {
      entry.sum = stats.floatSum;
      entry.nan = stats.nan;
      entry.bits = stats.bits.toString();
    }
    out[name] = entry;
  }
  return out;
}

async function main() {
  const [uri, command, protoArg] = process.argv.slice(2);
  if (!uri || !command) usage();
  const protoPath = protoArg ?? fileURLToPath(new URL("../flight_protocol.proto", import.meta.url));
  const client = connect(uri, protoPath);
  const others = new Map(); // endpoint locations other than this server
  try {
    const flights = (await collect(client.ListFlights({ expression: Buffer.alloc(0) }))).map(
      (info) => ({
        path: info.flight_descriptor?.path ?? [],
        columns: flightSchema(info.schema)?.fields.map((field) => field.name) ?? [],
      }),
    );
    const info = await unary(client, "GetFlightInfo", {
      type: "CMD",
      cmd: Buffer.from(command, "utf8"),
    });
    const totals = {
      partitioned: { rows: 0, batches: 0, columns: {} },
      immutable: { rows: 0, batches: 0, columns: {} },
    };
    for (const endpoint of info.endpoint) {
      // an endpoint naming locations may be redeemed on any of them; none means this server
      let target = client;
      const where = endpoint.location.find((l) => !l.uri.startsWith("arrow-flight-reuse-"));
      if (where) {
        if (!others.has(where.uri)) others.set(where.uri, connect(where.uri, protoPath));
        target = others.get(where.uri);
      }
      const messages = await collect(target.DoGet(endpoint.ticket));
      readStream(ipcStream(messages), totals);
    }
    const result = {
      flights,
      endpoints: info.endpoint.length,
      ordered: info.ordered,
      total_records: Number(info.total_records),
      rows: totals.partitioned.rows,
      batches: totals.partitioned.batches,
      columns: columnsJson(totals.partitioned.columns),
      immutable: columnsJson(totals.immutable.columns),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    client.close();
    for (const other of others.values()) other.close();
  }
}

main().catch((error) => {
  const status = error.code !== undefined ? ` (gRPC status ${error.code})` : "";
  process.stderr.write(`error${status}: ${error.details ?? error.message}\n`);
  process.exit(1);
});
