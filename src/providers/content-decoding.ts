import type { IncomingHttpHeaders } from "node:http";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import type { BodySink, UpstreamBody } from "./upstream-client.js";

type Decoder = ReturnType<typeof createGunzip> | ReturnType<typeof createInflate> | ReturnType<typeof createBrotliDecompress>;

function createDecoder(encoding: string): Decoder | undefined {
  switch (encoding) {
    case "gzip":
    case "x-gzip":
      return createGunzip();
    case "deflate":
      return createInflate();
    case "br":
      return createBrotliDecompress();
    default:
      return undefined;
  }
}

/**
 * The body as the provider meant it. Keyport asks for `accept-encoding: identity`, but a provider
 * or a proxy in between may compress anyway; usage is read from the bytes, and the client must get
 * bytes that match the headers it is sent. A gzip, deflate or brotli body is decoded (its
 * `content-encoding` and `content-length` are removed from `headers`, which the caller owns); an
 * encoding Keyport cannot decode is left as it is, with its header, so the client can decode it
 * and only the usage stays unknown.
 */
export function decodedBody(headers: IncomingHttpHeaders, body: UpstreamBody): UpstreamBody {
  const encoding = headers["content-encoding"];
  if (encoding === undefined) return body;
  const name = String(encoding).trim().toLowerCase();
  if (name === "" || name === "identity") {
    delete headers["content-encoding"];
    return body;
  }
  const decoder = createDecoder(name);
  if (decoder === undefined) return body;
  delete headers["content-encoding"];
  delete headers["content-length"];
  return new DecodingBody(body, decoder);
}

/**
 * Feeds the encoded body through a zlib decoder to the sink, chunk by chunk as it arrives (a
 * compressed stream is still relayed event by event), with backpressure both ways. Rare: only a
 * provider that ignores `accept-encoding: identity` takes this path.
 */
class DecodingBody implements UpstreamBody, BodySink {
  #sink: BodySink | undefined;
  #isDone = false;
  readonly #encoded: UpstreamBody;
  readonly #decoder: Decoder;

  constructor(encoded: UpstreamBody, decoder: Decoder) {
    this.#encoded = encoded;
    this.#decoder = decoder;
  }

  consume(sink: BodySink): void {
    this.#sink = sink;
    this.#decoder.on("data", (chunk: Buffer) => {
      if (!sink.onData(chunk)) this.#decoder.pause();
    });
    this.#decoder.on("drain", () => this.#encoded.resume());
    this.#decoder.once("end", () => this.#finish(undefined));
    this.#decoder.once("error", (error: Error) => {
      this.#encoded.destroy();
      this.#finish(error);
    });
    this.#encoded.consume(this);
  }

  // BodySink of the encoded body.
  onData(chunk: Buffer): boolean {
    return this.#decoder.write(chunk);
  }

  onEnd(): void {
    this.#decoder.end();
  }

  onError(error: Error): void {
    this.#decoder.destroy();
    this.#finish(error);
  }

  // UpstreamBody for the sink.
  resume(): void {
    this.#decoder.resume();
  }

  destroy(): void {
    this.#encoded.destroy();
    this.#decoder.destroy();
  }

  #finish(error: Error | undefined): void {
    if (this.#isDone) return;
    this.#isDone = true;
    if (error === undefined) this.#sink?.onEnd();
    else this.#sink?.onError(error);
  }
}
