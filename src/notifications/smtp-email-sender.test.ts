import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startSmtpReceiver, type SmtpReceiver } from "../../test/support/smtp-receiver.js";
import { redacted } from "../lib/redacted.js";
import type { EmailSender } from "./email-sender.js";
import { createSmtpEmailSender } from "./smtp-email-sender.js";

describe("SMTP email sender", () => {
  let smtp: SmtpReceiver;
  let sender: EmailSender;

  beforeAll(async () => {
    smtp = await startSmtpReceiver();
    sender = createSmtpEmailSender({ url: redacted(smtp.url), from: "Keyport <alerts@keyport.test>", timeoutMs: 2_000 });
  });
  afterEach(() => {
    smtp.messages.length = 0;
    smtp.refuseNext(0, 451);
  });
  afterAll(async () => {
    await sender?.close();
    await smtp?.close();
  });

  const message = (to: string) => ({ to, subject: "[Keyport] Subject", text: "Body\n", messageId: "<evt_1@keyport>" });

  it("sends a plain-text message to exactly the one recipient", async () => {
    expect(await sender.send(message("owner@example.test"))).toEqual({ ok: true });
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]?.to).toEqual(["owner@example.test"]);
    expect(smtp.messages[0]?.raw).toContain("Auto-Submitted: auto-generated");
    expect(smtp.messages[0]?.raw).toContain("Message-ID: <evt_1@keyport>");
  });

  it("never reads a saved address as a list of recipients", async () => {
    const result = await sender.send(message("owner@example.test,attacker@example.test"));
    const recipients = smtp.messages.flatMap((mail) => mail.to);
    expect(recipients).not.toContain("attacker@example.test");
    expect(recipients.length <= 1, JSON.stringify({ result, recipients })).toBe(true);
  });

  it("tells a temporary refusal from a permanent one by the reply code alone", async () => {
    smtp.refuseNext(1, 451);
    expect(await sender.send(message("owner@example.test"))).toEqual({ ok: false, permanent: false, error: "SMTP 451" });
    smtp.refuseNext(1, 550);
    expect(await sender.send(message("owner@example.test"))).toEqual({ ok: false, permanent: true, error: "SMTP 550" });
  });

  it("reports an unreachable server without its address or credentials", async () => {
    const unreachable = createSmtpEmailSender({ url: redacted("smtp://user:secret-password@127.0.0.1:1"), from: "alerts@keyport.test", timeoutMs: 1_000 });
    try {
      const result = await unreachable.send(message("owner@example.test"));
      expect(result).toMatchObject({ ok: false, permanent: false });
      expect(JSON.stringify(result)).not.toContain("secret-password");
      expect(result.ok === false && result.error).toMatch(/^SMTP connection failed \(/);
    } finally {
      await unreachable.close();
    }
  });
});
