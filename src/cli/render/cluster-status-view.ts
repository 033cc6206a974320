// How `status --cluster` shows the cluster: one table row per instance, the cluster pause above,
// the binlog archive of the shard masters below.
import { formatBytes, formatSeconds } from '../../format.js';
import type { ClusterStatus, InstanceStatus } from '../../cluster/status.js';
import { printable as e, renderTable } from './table.js';

export function renderClusterStatus(s: ClusterStatus): string {
  const lines: string[] = [];
  if (s.clusterPause) {
    const p = s.clusterPause;
    lines.push(e(`Cluster paused until ${p.until} (${p.reason || 'no reason given'}${p.by ? `, by ${p.by}` : ''}): no new backup starts.`));
  }
  lines.push(
    renderTable(
      ['Server', 'Role', 'Shard', 'Host:Port', 'Agent', 'Running', 'Last success', 'Problem'],
      s.instances.map((i) => [
        e(i.serverName),
        i.role,
        i.shard ?? '-',
        e(`${i.host}:${i.port}`),
        agentCell(i),
        runningCell(i),
        successCell(i),
        e(i.problems.join('; ')) || '-',
      ]),
      { multiline: true },
    ),
  );
  const archived = s.instances.filter((i) => i.archive);
  if (archived.length > 0) {
    lines.push('Binlog archive (as each agent last published it):');
    for (const i of archived) {
      const a = i.archive!;
      const lag = a.lagS === null ? 'lag unknown' : `lag ${formatSeconds(a.lagS)}`;
      lines.push(
        e(
          `  ${i.serverName} ${i.host}:${i.port} shard ${i.shard ?? '-'}: ${lag}, archived up to ${a.gtid || '(nothing yet)'}${a.note ? `; ${a.note}` : ''}`,
        ),
      );
    }
  }
  const bad = s.instances.filter((i) => i.agent.state !== 'alive' && i.agent.state !== 'paused');
  lines.push(
    bad.length === 0
      ? `${s.instances.length} instances: every agent alive or paused.`
      : `${s.instances.length} instances: ${bad.length} without a live agent (${bad.map((i) => `${e(i.serverName)} ${i.agent.state === 'not-reporting' ? `not reporting: ${i.agent.reason ?? '?'}` : i.agent.state}`).join(', ')}).`,
  );
  return lines.join('\n');
}

function agentCell(i: InstanceStatus): string {
  const a = i.agent;
  if (a.state === 'none' || a.state === 'unknown') return a.state;
  if (a.state === 'not-reporting') return `not reporting: ${e(a.reason ?? '?')}`;
  const head = `${a.state} v${e(a.version ?? '?')}, ${a.ageS === undefined ? '?' : formatSeconds(a.ageS)} ago`;
  return a.state === 'paused' ? `${head}\nuntil ${e(String(a.pauseUntil))}: ${e(a.pauseReason || 'no reason given')}` : head;
}

function runningCell(i: InstanceStatus): string {
  const r = i.running;
  if (!r) return '-';
  const bytes = r.bytes === null ? '' : `, ${formatBytes(r.bytes)}${r.bytesPerS === null ? '' : ` (${formatBytes(r.bytesPerS)}/s)`}`;
  return `${e(r.backupId)}\nfor ${formatSeconds(r.elapsedS)}${bytes}`;
}

function successCell(i: InstanceStatus): string {
  const s = i.lastSuccess;
  return s ? `${e(s.backupId)}\nended ${e(s.endedAt)} (${formatSeconds(s.durationS)} after scheduled)` : '-';
}
