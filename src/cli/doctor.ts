import { Chalk } from 'chalk';
import { prometheusClientFromSettings } from '../analysis/prometheus-client.js';
import { runDoctor } from '../doctor/doctor.js';
import { EXIT } from '../errors.js';
import { kubeRetryOf } from '../k8s/api-errors.js';
import { connect } from '../k8s/connection.js';
import { loadPolicy } from '../policy/loader.js';
import { targetNames } from '../policy/policy.js';
import { colorEnabled } from '../report/color.js';
import { renderDoctor } from '../report/doctor-view.js';
import { parseNamespace, parseOutput, parseTargetName } from './parse-flags.js';

export interface DoctorFlags {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  policy?: string;
  prometheus?: string;
  output?: string;
  migration?: boolean;
}

/** 0 when a rollout can work (warnings allowed), 2 when something must be fixed first. */
export async function doctorCommand(name: string, flags: DoctorFlags): Promise<number> {
  const target = parseTargetName(name);
  const format = parseOutput(flags.output);
  const policy = loadPolicy(flags.policy);
  const conn = connect({ ...(flags.kubeconfig && { kubeconfig: flags.kubeconfig }), ...(flags.context && { context: flags.context }) });
  const namespace = parseNamespace(flags.namespace ?? conn.defaultNamespace);
  const client = prometheusClientFromSettings(policy.prometheus, flags.prometheus);
  try {
    const report = await runDoctor({
      target,
      namespace,
      names: targetNames(target, policy.target),
      policy,
      kc: conn.kc,
      retry: kubeRetryOf(policy.kubernetes),
      prometheus: client,
      now: new Date(),
    });
    if (format === 'json') {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const tty = Boolean(process.stdout.isTTY);
      const c = new Chalk({ level: colorEnabled(tty) ? 1 : 0 });
      process.stdout.write(renderDoctor(report, { ok: c.green, warn: c.yellow, fail: c.red, bold: c.bold }, { migration: flags.migration !== false }));
    }
    return report.canWork ? EXIT.ok : EXIT.invalidInput;
  } finally {
    client.close();
  }
}
