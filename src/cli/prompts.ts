/*
 * Questions to the person at the console, through inquirer. Every question validates its answer
 * and asks again with the reason, so a typo never ends a failback. Under --no-prompt there is no
 * Prompter at all: a step that would need one fails with the flag that settles it instead.
 */
import inquirer from "inquirer";
import type { Readable, Writable } from "node:stream";

export type Validate = (answer: string) => true | string;

export interface Prompter {
  /** Free text; `validate` returns true or the reason to ask again. */
  text(message: string, options?: { validate?: Validate; default?: string }): Promise<string>;
  /** Masked text (secret key, session token). */
  secret(message: string, options?: { validate?: Validate; allowEmpty?: boolean }): Promise<string>;
}

export function createPrompter(streams: { input: Readable; output: Writable }): Prompter {
  const prompt = inquirer.createPromptModule({ input: streams.input, output: streams.output });
  return {
    async text(message, options = {}) {
      const { answer } = await prompt<{ answer: string }>([
        {
          type: "input",
          name: "answer",
          message,
          default: options.default,
          validate: (value: string) => (options.validate ? options.validate(value.trim()) : true),
        },
      ]);
      return String(answer).trim();
    },
    async secret(message, options = {}) {
      const { answer } = await prompt<{ answer: string }>([
        {
          type: "password",
          name: "answer",
          message,
          mask: "*",
          validate: (value: string) => {
            if (!value && !options.allowEmpty) return "A value is required.";
            return options.validate ? options.validate(value) : true;
          },
        },
      ]);
      return String(answer);
    },
  };
}
