/*
 * Step 8b: at a terminal, the person approves the plan before anything can be written. The mapping
 * may have been made without a question (the automatic mapping), and pairing can then wait minutes,
 * so this is the last point where someone is surely watching. Only a whole "yes" starts: a stray
 * Enter or "y" typed ahead into the prompt must not erase a disk. Under --no-prompt (or without a
 * terminal), or with --device-mapping, the flags are the consent and nothing is asked.
 */
import { CliError, EXIT } from "../exit-codes.js";
import type { Prompter } from "../prompts.js";
import type { Plan } from "./plan.js";

/** The local disks and files the plan overwrites, in the plan's order. */
export function targetsOf(plan: Plan): string[] {
  return plan.mappings.flatMap((m) => (m.localDisk ? [m.localDisk.name] : []));
}

export async function approvePlan(plan: Plan, prompter: Prompter): Promise<void> {
  const targets = targetsOf(plan);
  // Short enough for one line of an 80-column console with two disks.
  const answer = await prompter.text(`Overwrite everything on ${targets.join(", ")} and start the failback? (yes/no)`, {
    validate: (value) => (/^(yes|no)$/i.test(value) ? true : `Type yes to start, or no to stop without writing anything (not "${value}").`),
  });
  if (answer.toLowerCase() !== "yes") {
    throw new CliError("PLAN_DECLINED", EXIT.cancelled, "the plan was declined at the prompt; nothing was written");
  }
}
