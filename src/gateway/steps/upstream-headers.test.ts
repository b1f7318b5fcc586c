import { describe, expect, it } from "vitest";
import type { RequestHeaderRules } from "../../providers/spec.js";
import { upstreamRequestHeaders } from "./upstream-headers.js";

const RULES: RequestHeaderRules = {
  passed: ["anthropic-version"],
  account: ["openai-organization"],
  platformAccount: { "openai-organization": "org-operator" },
  beta: ["anthropic-beta"],
};
const CLIENT = {
  authorization: "Bearer eyJ.jwt.sig",
  "x-api-key": "eyJ.jwt.sig",
  accept: "text/event-stream",
  "user-agent": "sdk/1",
  cookie: "session=1",
  "anthropic-version": "2023-06-01",
  "openai-organization": "org-caller",
  "anthropic-beta": "a-1, b-2,c-3",
};
const AUTH = { "x-api-key": "sk-ant-api03-key" };

describe("upstreamRequestHeaders", () => {
  it("with the owner's own key: the passed, account and beta headers as sent, the key, nothing of the caller's credentials", () => {
    expect(upstreamRequestHeaders(CLIENT, RULES, { source: "byok", platformBetas: new Set(), auth: AUTH, hasBody: true })).toEqual({
      accept: "text/event-stream",
      "accept-encoding": "identity",
      "content-type": "application/json",
      "user-agent": "sdk/1",
      "anthropic-version": "2023-06-01",
      "openai-organization": "org-caller",
      "anthropic-beta": "a-1, b-2,c-3",
      ...AUTH,
    });
  });

  it("with the platform key: the operator's account header and only the listed betas", () => {
    const headers = upstreamRequestHeaders(CLIENT, RULES, { source: "platform", platformBetas: new Set(["c-3", "a-1"]), auth: AUTH, hasBody: false });
    expect(headers).toMatchObject({ "openai-organization": "org-operator", "anthropic-beta": "a-1,c-3", "anthropic-version": "2023-06-01" });
    expect(headers).not.toHaveProperty("content-type");
  });

  it("with the platform key: no beta header when none is listed, every value when the header's name is listed", () => {
    expect(upstreamRequestHeaders(CLIENT, RULES, { source: "platform", platformBetas: new Set(["z"]), auth: AUTH, hasBody: false })).not.toHaveProperty("anthropic-beta");
    expect(upstreamRequestHeaders(CLIENT, RULES, { source: "platform", platformBetas: new Set(["anthropic-beta"]), auth: AUTH, hasBody: false })).toMatchObject({
      "anthropic-beta": "a-1, b-2,c-3",
    });
  });

  it("sends no account header on a platform call when the operator configured none", () => {
    const headers = upstreamRequestHeaders(CLIENT, { ...RULES, platformAccount: {} }, { source: "platform", platformBetas: new Set(), auth: AUTH, hasBody: false });
    expect(headers).not.toHaveProperty("openai-organization");
  });
});
