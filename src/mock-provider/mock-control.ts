import type { FaultList } from "./mock-faults.js";
import { parseMockFault } from "./mock-faults.js";
import { isRecord } from "./mock-text.js";
import type { RequestRecorder } from "./request-recorder.js";
import type { MockKeyBehaviour } from "./types.js";
import { MOCK_KEY_BEHAVIOURS } from "./types.js";

export const CONTROL_PREFIX = "/__mock/";

export type MockControlState = {
  keys: Map<string, MockKeyBehaviour>;
  faults: FaultList;
  recorder: RequestRecorder;
};

export type ControlAnswer = { status: number; body?: unknown };

/**
 * The HTTP control API, so another process (benchmark, demo) can drive the mock:
 * `POST /__mock/keys {key, behaviour}`, `POST /__mock/faults` (one fault or an array),
 * `DELETE /__mock/faults`, `GET /__mock/requests`, `DELETE /__mock/requests`.
 * It has no authentication: the mock is a development tool bound to loopback by default.
 */
export function handleControlRequest(
  method: string,
  path: string,
  body: unknown,
  state: MockControlState,
): ControlAnswer {
  const route = `${method} ${path}`;
  switch (route) {
    case "POST /__mock/keys":
      return setKey(body, state);
    case "POST /__mock/faults":
      return addFaults(body, state);
    case "DELETE /__mock/faults":
      state.faults.clear();
      return { status: 204 };
    case "GET /__mock/requests":
      return { status: 200, body: state.recorder.list() };
    case "DELETE /__mock/requests":
      state.recorder.clear();
      return { status: 204 };
    default:
      return { status: 404, body: { error: `no control route ${route}` } };
  }
}

function setKey(body: unknown, state: MockControlState): ControlAnswer {
  if (!isRecord(body) || typeof body.key !== "string" || body.key === "") {
    return { status: 400, body: { error: "expected {\"key\": string, \"behaviour\": string}" } };
  }
  const behaviour = MOCK_KEY_BEHAVIOURS.find((candidate) => candidate === body.behaviour);
  if (behaviour === undefined) {
    return { status: 400, body: { error: `behaviour must be one of ${MOCK_KEY_BEHAVIOURS.join(", ")}` } };
  }
  state.keys.set(body.key, behaviour);
  return { status: 204 };
}

function addFaults(body: unknown, state: MockControlState): ControlAnswer {
  const items = Array.isArray(body) ? body : [body];
  const faults = [];
  for (const item of items) {
    const fault = parseMockFault(item);
    if (typeof fault === "string") return { status: 400, body: { error: fault } };
    faults.push(fault);
  }
  for (const fault of faults) state.faults.add(fault);
  return { status: 204 };
}
